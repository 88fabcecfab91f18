DROP TABLE order_exchange_rates;
DROP TABLE exchange_rates;
