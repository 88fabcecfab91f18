DROP TABLE reservations;
DROP TABLE products;
