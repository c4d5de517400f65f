use std::time::{Duration, Instant};

use rdkafka::Offset;

use crate::helpers::kafka::committed;
use crate::helpers::TestApp;

#[tokio::test]
async fn committed_cursors_are_mirrored_to_kafka_group_offsets() {
    let app = TestApp::spawn_with(|f| f.merge(("consume.mirror_interval_ms", 200))).await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 10).await;
    assert_eq!(
        app.consume_ok(&user, &password, &topic, "limit=4")
            .await
            .len(),
        4
    );

    let group = format!("{tenant}.app");
    let started = Instant::now();
    loop {
        let offset = committed(&app.bootstrap, &group, &topic);
        if offset == Offset::Offset(4) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Kafka shows {offset:?} for {group}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
