//! The invariant check every test ends with is not vacuous: a settled system passes it, and each
//! kind of breakage is reported, per order and per dead-letter queue.

use crate::support::System;
use invariants::{Expectations, verify};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_on_a_good_day_and_each_breakage_is_reported_per_order() {
    let system = System::start().await;
    let pen = system.product("PEN", "2.50", 5).await;
    let (status, order) = system.order(&[(pen, 2)], None).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(system.terminal(&id).await["status"], "confirmed");
    let target = system.invariants_target();
    let good = verify(&target, &Expectations::new(), invariants::SETTLE_TIMEOUT).await;
    let good = good.unwrap_or_else(|broken| panic!("a settled system passes: {broken}"));
    assert!(good.to_string().starts_with("invariants hold"), "{good}");

    // Break one invariant of each kind behind the services' backs.
    system
        .execute(&format!("UPDATE inventory.reservations SET status = 'reserved' WHERE order_id = '{id}'"))
        .await;
    system
        .execute(&format!("UPDATE payment.payments SET refunded_amount = 1.00 WHERE order_id = '{id}'"))
        .await;
    system
        .execute(&format!("DELETE FROM notifier.notifications WHERE order_id = '{id}' AND kind = 'invoice'"))
        .await;
    system.publish_raw("order.created", b"{ not an event").await;
    testkit::eventually("the poison dead-lettered", crate::support::SAGA_TIMEOUT, || async {
        (system.queue_depth("inventory.inbox.dlq").await == 1
            && system.queue_depth("webhook-dispatcher.inbox.dlq").await == 1)
            .then_some(())
    })
    .await;

    let broken = match verify(&target, &Expectations::new(), Duration::from_secs(1)).await {
        Err(invariants::Error::Broken(report)) => report.to_string(),
        other => panic!("the breakage is reported: {other:?}"),
    };
    for expected in [
        "dead-letter queue inventory.inbox.dlq holds 1 message(s), expected 0",
        "order.created × 1: not a JSON CloudEvent",
        "product PEN",
        &format!("order {id} `confirmed` total 5.00 USD: ordered 2, reserved 2, committed 0"),
        "stock: 2 unit(s) still reserved",
        "stock: committed 0 of 2 ordered unit(s)",
        "money: captured 5.00 - refunded 1.00 = 4.00 USD, expected 5.00 for a confirmed order",
        "money: refunds recorded add up to 0.00, the payment says 1.00 refunded",
        "invoices: 0 sent, expected 1",
    ] {
        assert!(broken.contains(expected), "`{expected}` missing from:\n{broken}");
    }

    // Declared exceptions are not reported; the rest still is.
    let excused = Expectations::new()
        .expect_dead_letters("inventory.inbox.dlq", 1)
        .expect_dead_letters("webhook-dispatcher.inbox.dlq", 1)
        .allow_unbalanced_payment(id.as_str(), "refunded by hand above");
    let broken = match verify(&target, &excused, Duration::from_secs(1)).await {
        Err(invariants::Error::Broken(report)) => report.to_string(),
        other => panic!("still broken: {other:?}"),
    };
    assert!(
        !broken.contains("dead-letter queue inventory.inbox.dlq") && !broken.contains("money:"),
        "{broken}"
    );
    assert!(broken.contains("declared exceptions:"), "{broken}");
    assert!(
        broken.contains("stock: 2 unit(s) still reserved") && broken.contains("invoices: 0 sent"),
        "{broken}"
    );
    // Tampered with on purpose: stopped without the final check.
    system.stop().await;
}
