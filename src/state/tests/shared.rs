//! Several instances on one PostgreSQL database: racing raises, migrations at once,
//! leadership, and events every instance receives.

use std::time::Duration;

use tokio::sync::broadcast::Receiver;
use tokio::time::timeout;

use super::{PgDb, firing, scalar};
use crate::state::{AlertEvent, AlertFilter, EventKind, StateStore};

const T0: i64 = 1_750_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_starting_and_firing_at_once_raise_one_alert() {
    let db = PgDb::create().await;
    // Both apply the migrations at once: the advisory lock lets one do it.
    let (one, two) = tokio::join!(StateStore::open(&db.url), StateStore::open(&db.url));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert!(one.is_shared());
    assert_eq!(
        scalar(&one, "SELECT COUNT(*) FROM simpul_migrations").await,
        crate::state::sql::SQLITE_MIGRATIONS.len() as i64
    );

    let mut racing = Vec::new();
    for i in 0..20_i64 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        racing.push(tokio::spawn(async move {
            store.fire(&firing("flood", "3503010", "", T0 + i)).await
        }));
    }
    let mut raised = 0;
    for task in racing {
        raised += usize::from(task.await.unwrap().unwrap().is_some());
    }
    assert_eq!(raised, 1);
    let open = AlertFilter {
        status: Some("OPEN".into()),
        ..Default::default()
    };
    assert_eq!(two.alerts(&open).await.unwrap().len(), 1);
    assert_eq!(scalar(&one, "SELECT COUNT(*) FROM simpul_alerts").await, 1);
}

#[tokio::test]
async fn one_instance_leads_until_its_leader_is_dropped() {
    let db = PgDb::create().await;
    let one = StateStore::open(&db.url).await.unwrap();
    let two = StateStore::open(&db.url).await.unwrap();
    let mut leader = one.try_lead().await.unwrap().expect("nobody leads yet");
    assert!(two.try_lead().await.unwrap().is_none());
    assert!(
        one.try_lead().await.unwrap().is_none(),
        "a second connection is another session"
    );
    assert!(leader.still_leading().await);

    drop(leader);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut next = loop {
        if let Some(leader) = two.try_lead().await.unwrap() {
            break leader;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lock outlived its leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(next.still_leading().await);

    // A leader whose connection was killed learns it, and the lock is free again.
    let admin = StateStore::open(&db.url).await.unwrap();
    super::on_pool!(admin.pool(), |p| {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'simpul-leader' AND datname = current_database()",
        )
        .execute(p)
        .await
        .unwrap();
    });
    assert!(!next.still_leading().await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while one.try_lead().await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a killed leader kept the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn next_event(events: &mut Receiver<AlertEvent>) -> AlertEvent {
    timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .unwrap()
}

#[tokio::test]
async fn every_instance_receives_each_event_once() {
    let db = PgDb::create().await;
    let one = StateStore::open(&db.url).await.unwrap();
    let two = StateStore::open(&db.url).await.unwrap();
    let (mut at_one, mut at_two) = (one.events(), two.events());
    let a = one
        .fire(&firing("r", "3503010", "", T0))
        .await
        .unwrap()
        .unwrap();
    one.acknowledge(a.id, "budi", Some("on it"), T0 + 1)
        .await
        .unwrap();
    one.publish(EventKind::Changed, a.id).await.unwrap();

    for events in [&mut at_one, &mut at_two] {
        let event = next_event(events).await;
        assert_eq!((event.kind, event.alert.id), (EventKind::Changed, a.id));
        // The alert as loaded, with its history, not the payload.
        assert_eq!(event.alert.status, "ACKNOWLEDGED");
        assert_eq!(event.alert.follow_ups.len(), 1);
        let more = timeout(Duration::from_millis(300), events.recv()).await;
        assert!(more.is_err(), "one event, once");
    }
    let json = serde_json::to_value(next_kind(&two, &mut at_one, a.id).await).unwrap();
    assert_eq!(json["kind"], "raised");
    assert_eq!(json["alert"]["region_code"], "3503010");
}

/// Publishes a raise from `from` and returns what `events` receives.
async fn next_kind(from: &StateStore, events: &mut Receiver<AlertEvent>, id: i64) -> AlertEvent {
    from.publish(EventKind::Raised, id).await.unwrap();
    next_event(events).await
}

#[tokio::test]
async fn the_listener_reconnects_when_its_connection_drops() {
    let db = PgDb::create().await;
    let one = StateStore::open(&db.url).await.unwrap();
    let two = StateStore::open(&db.url).await.unwrap();
    let mut at_two = two.events();
    let a = one
        .fire(&firing("r", "3503010", "", T0))
        .await
        .unwrap()
        .unwrap();
    super::on_pool!(one.pool(), |p| {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'simpul-alerts-listener' AND datname = current_database()",
        )
        .execute(p)
        .await
        .unwrap();
    });
    // Notices sent while it reconnects are lost: publish until one arrives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        one.publish(EventKind::Raised, a.id).await.unwrap();
        if let Ok(event) = timeout(Duration::from_millis(200), at_two.recv()).await {
            assert_eq!(event.unwrap().alert.id, a.id);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener never came back"
        );
    }
}
