use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::helpers::TestApp;

/// What Kafka itself holds as a group's committed offset.
fn committed(bootstrap: &str, group: &str, topic: &str) -> Offset {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, 0);
    let found = consumer
        .committed_offsets(list, Duration::from_secs(5))
        .unwrap();
    found.find_partition(topic, 0).unwrap().offset()
}

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
