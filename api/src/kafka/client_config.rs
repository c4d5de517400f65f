//! One place that turns `kafka.*` settings into librdkafka properties, so
//! the producer, the admin client and the readers all connect the same way.

use rdkafka::ClientConfig;
use secrecy::ExposeSecret;

use super::settings::KafkaSettings;

/// The connection properties every client shares. Tenant input never
/// reaches this: only operator configuration does.
pub fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("security.protocol", settings.security_protocol.as_str())
        .set("client.id", "sluice");
    if let Some(mechanism) = settings.sasl.mechanism {
        config.set("sasl.mechanism", mechanism.as_str());
    }
    if let Some(username) = &settings.sasl.username {
        config.set("sasl.username", username);
    }
    if let Some(password) = &settings.sasl.password {
        config.set("sasl.password", password.expose_secret());
    }
    if let Some(ca) = &settings.ssl.ca_location {
        config.set("ssl.ca.location", ca.display().to_string());
    }
    for (key, value) in &settings.properties {
        config.set(key, value.to_string());
    }
    config
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::kafka::{
        KafkaSaslSettings, KafkaSslSettings, PropertyValue, SaslMechanism, SecurityProtocol,
    };

    #[test]
    fn confluent_cloud_style_sasl_ssl_settings_reach_librdkafka() {
        let mut properties = BTreeMap::new();
        properties.insert("linger.ms".to_owned(), PropertyValue::Integer(5));
        let settings = KafkaSettings {
            bootstrap_servers: "pkc-1.europe-west1.gcp.confluent.cloud:9092".into(),
            security_protocol: SecurityProtocol::SaslSsl,
            sasl: KafkaSaslSettings {
                mechanism: Some(SaslMechanism::Plain),
                username: Some("KEY".into()),
                password: Some("SECRET".to_owned().into()),
            },
            ssl: KafkaSslSettings {
                ca_location: Some("/etc/ssl/ca.pem".into()),
            },
            properties,
            replication_factor: 3,
            request_timeout: std::time::Duration::from_secs(5),
        };

        let config = base_config(&settings);

        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(config.get("sasl.username"), Some("KEY"));
        assert_eq!(config.get("sasl.password"), Some("SECRET"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/ssl/ca.pem"));
        assert_eq!(config.get("linger.ms"), Some("5"));
    }
}
