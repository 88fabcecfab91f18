//! No overselling, whatever the concurrency or the number of inventory replicas.

use crate::support::{Options, System};
use futures_util::future::join_all;

async fn two_hundred_buyers_for_one_hundred_units(inventory_instances: usize) {
    let system = System::start_with(Options { inventory_instances, ..Default::default() }).await;
    let hot = system.product("HOT", "1.00", 100).await;
    let line = [(hot, 1)];
    let placed = join_all((0..200).map(|_| system.order(&line, None))).await;
    let ids: Vec<String> = placed
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut confirmed = 0;
    let mut failed = 0;
    for id in &ids {
        let done = system.terminal(id).await;
        match done["status"].as_str() {
            Some("confirmed") => confirmed += 1,
            Some("failed") => {
                assert_eq!(done["failure_reason"], "out_of_stock");
                failed += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((confirmed, failed), (100, 100));
    testkit::eventually("all reservations committed", crate::support::SAGA_TIMEOUT, || async {
        let view = system.product_view(hot).await;
        (view["stock"].as_i64() == Some(0)).then_some(view)
    })
    .await;
    assert_eq!(system.product_view(hot).await["available"].as_i64(), Some(0));
    assert_eq!(
        system.count("SELECT count(*) AS n FROM inventory.reservations WHERE status = 'committed'").await,
        100
    );
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_orders_for_one_hundred_units_confirm_exactly_one_hundred() {
    two_hundred_buyers_for_one_hundred_units(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_inventory_replicas_competing_still_never_oversell() {
    two_hundred_buyers_for_one_hundred_units(2).await;
}
