//! One place that turns `kafka.*` settings into librdkafka properties, so
//! the producer, the admin client and the readers all connect the same way.

use rdkafka::ClientConfig;
use secrecy::ExposeSecret;

use crate::config::KafkaSettings;

/// The connection properties every client shares. Tenant input never
/// reaches this: only operator configuration does.
pub fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set(
            "security.protocol",
            settings.security_protocol.to_ascii_lowercase(),
        )
        .set("client.id", "sluice");
    if let Some(mechanism) = &settings.sasl.mechanism {
        config.set("sasl.mechanism", mechanism.to_ascii_uppercase());
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
