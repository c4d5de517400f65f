use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::kafka::read_back;
use crate::helpers::TestApp;

#[tokio::test]
async fn messages_produced_with_each_codec_are_read_back_intact() {
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let app = TestApp::spawn_with(|f| {
            f.merge(figment::providers::Serialized::default(
                "kafka.properties",
                json!({ "compression.type": codec }),
            ))
        })
        .await;
        let (_, topic, user, password) = app.tenant_with_topic(1).await;
        let value = format!("{codec} ").repeat(2000);
        let body = json!([{ "Value": value, "Key": codec }]).to_string();

        let response = app.produce(&user, &password, &topic, &body).await;

        assert_eq!(response.status(), StatusCode::OK, "{codec}");
        let stored = read_back(&app.bootstrap, &topic, 1, 1);
        assert_eq!(
            stored[0].value.as_deref(),
            Some(value.as_bytes()),
            "{codec}"
        );
        assert_eq!(stored[0].key.as_deref(), Some(codec.as_bytes()), "{codec}");
    }
}
