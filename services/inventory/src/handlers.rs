//! Inventory's part in the saga: reserve on `order.created`, commit on `order.confirmed`,
//! release on `order.failed`. Each runs inside the consumer's transaction with the inbox row.

use crate::OUTBOX;
use crate::domain::reservation_lines;
use crate::store::{self, ReserveError, Settlement};
use contracts::events::{StockRejected, StockReserved, StockSettled};
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use messaging::{EventHandler, HandleError};

pub struct OrderEvents;

impl EventHandler for OrderEvents {
    const HANDLES: &'static [&'static str] =
        &["order.created", "order.confirmed", "order.failed", "order.cancelled"];

    async fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        envelope: &Envelope,
        event: Event,
    ) -> Result<(), HandleError> {
        match event {
            Event::OrderCreated(order) => {
                let seen = store::order_seen(conn, order.order_id).await?;
                if seen.cancelled {
                    tracing::info!(order_id = %order.order_id, "order was cancelled before it reached inventory; reserving nothing");
                    return Ok(());
                }
                if seen.reserved {
                    tracing::info!(order_id = %order.order_id, "order already has a reservation; ignoring repeat");
                    return Ok(());
                }
                let lines = reservation_lines(&order.lines);
                let reply = match store::reserve_all(conn, order.order_id, &lines).await {
                    Ok(()) => Event::StockReserved(StockReserved { order_id: order.order_id, lines }),
                    Err(ReserveError::Rejected { reason, product_id }) => {
                        tracing::info!(order_id = %order.order_id, %product_id, ?reason, "reservation rejected");
                        Event::StockRejected(StockRejected {
                            order_id: order.order_id,
                            reason,
                            product_id: Some(product_id),
                        })
                    }
                    Err(ReserveError::Db(error)) => return Err(error.into()),
                };
                OUTBOX.enqueue(conn, &reply).await?;
            }
            Event::OrderConfirmed(order) => {
                let lines = store::settle(conn, order.order_id, Settlement::Commit).await?;
                if !lines.is_empty() {
                    OUTBOX
                        .enqueue(
                            conn,
                            &Event::StockCommitted(StockSettled { order_id: order.order_id, lines }),
                        )
                        .await?;
                }
            }
            Event::OrderFailed(order) => {
                let lines = store::settle(conn, order.order_id, Settlement::Release).await?;
                if !lines.is_empty() {
                    OUTBOX
                        .enqueue(
                            conn,
                            &Event::StockReleased(StockSettled { order_id: order.order_id, lines }),
                        )
                        .await?;
                }
            }
            Event::OrderCancelled(order) => {
                store::remember_cancellation(conn, order.order_id).await?;
                let released = store::settle(conn, order.order_id, Settlement::Release).await?;
                if !released.is_empty() {
                    let event =
                        Event::StockReleased(StockSettled { order_id: order.order_id, lines: released });
                    OUTBOX.enqueue(conn, &event).await?;
                }
                let returned = store::restock_committed(conn, order.order_id).await?;
                if !returned.is_empty() {
                    let event =
                        Event::StockReleased(StockSettled { order_id: order.order_id, lines: returned });
                    OUTBOX.enqueue(conn, &event).await?;
                }
            }
            other => {
                return Err(HandleError::Permanent(format!(
                    "inventory does not handle `{}` (event {})",
                    other.event_type(),
                    envelope.id
                )));
            }
        }
        Ok(())
    }
}
