//! The reference in `docs/` and the code agree: every error code in the
//! docs' error tables is in the catalogue with the status the table gives,
//! every code of the catalogue is documented, every configuration key the
//! docs name is one the loader takes, and every key the loader takes is
//! documented.

use std::collections::BTreeSet;

use figment::error::Kind;
use sluice::error::Code;

fn doc(name: &str) -> String {
    let path = format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The backticked words of a table cell, up to its first parenthesis (what
/// follows is commentary, e.g. the headers that come with a code).
fn codes_in(cell: &str) -> Vec<String> {
    let cell = cell.split('(').next().unwrap_or(cell);
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// (status, code) for every code in every table row of `docs/api.md`
/// that starts with an HTTP status.
fn documented_codes() -> BTreeSet<(u16, String)> {
    let mut found = BTreeSet::new();
    for line in doc("api.md").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 3 || !cells[0].is_empty() {
            continue;
        }
        let Some(status) = cells[1].get(..3).and_then(|s| s.parse::<u16>().ok()) else {
            continue;
        };
        for code in codes_in(cells[2]) {
            found.insert((status, code));
        }
    }
    found
}

#[test]
fn every_documented_error_code_is_in_the_catalogue_with_the_documented_status() {
    let documented = documented_codes();
    assert!(documented.len() > 30, "the error tables were not found");
    for (status, name) in &documented {
        let code = Code::ALL
            .iter()
            .find(|c| c.as_str() == name)
            .unwrap_or_else(|| panic!("docs/api.md names `{name}`, which is not a code"));
        assert_eq!(
            code.status().as_u16(),
            *status,
            "docs/api.md gives `{name}` the status {status}"
        );
    }
}

#[test]
fn every_code_of_the_catalogue_is_documented() {
    let documented: BTreeSet<String> = documented_codes().into_iter().map(|(_, c)| c).collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !documented.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/api.md's error tables: {missing:?}"
    );
}

/// Every key in the first column of `docs/configuration.md`'s table, with
/// whether it is an alias (an old name) and with `kafka.properties.*`
/// entries folded into `kafka.properties`.
fn documented_keys() -> BTreeSet<(String, bool)> {
    let mut keys = BTreeSet::new();
    for line in doc("configuration.md").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let (names, aliases) = match cells[1].split_once("(alias") {
            Some((names, aliases)) => (names, aliases),
            None => (cells[1], ""),
        };
        for (part, alias) in [(names, false), (aliases, true)] {
            for key in part.split('`').skip(1).step_by(2) {
                let key = if key.starts_with("kafka.properties") {
                    "kafka.properties"
                } else {
                    key
                };
                keys.insert((key.to_owned(), alias));
            }
        }
    }
    keys
}

/// The fields of the section at `path` ("" for the root) as the loader
/// names them: an unknown key makes it list them.
fn fields_of(path: &str) -> Vec<String> {
    let probe = if path.is_empty() {
        "zz_probe".to_owned()
    } else {
        format!("{path}.zz_probe")
    };
    let err = sluice::config::figment(None)
        .merge((probe.as_str(), 1))
        .extract::<sluice::config::Settings>()
        .expect_err("an unknown key is refused");
    for e in err {
        if let Kind::UnknownField(_, expected) = e.kind {
            return expected.iter().map(|f| (*f).to_owned()).collect();
        }
    }
    panic!("no unknown-field error for {probe}");
}

/// Whether the loader takes `key` (its value may still be of the wrong
/// type: only an unknown field counts against it).
fn accepted(key: &str) -> bool {
    let probe = if key == "kafka.properties" {
        "kafka.properties.probe".to_owned()
    } else {
        key.to_owned()
    };
    match sluice::config::figment(None)
        .merge((probe.as_str(), "probe"))
        .extract::<sluice::config::Settings>()
    {
        Ok(_) => true,
        Err(err) => !err
            .into_iter()
            .any(|e| matches!(e.kind, Kind::UnknownField(..))),
    }
}

#[test]
fn every_configuration_key_the_docs_name_is_taken_by_the_loader() {
    let keys = documented_keys();
    assert!(keys.len() > 40, "the configuration table was not found");
    let refused: Vec<&String> = keys
        .iter()
        .map(|(key, _)| key)
        .filter(|key| !accepted(key))
        .collect();
    assert!(
        refused.is_empty(),
        "documented but unknown to the loader: {refused:?}"
    );
}

#[test]
fn every_configuration_key_the_loader_takes_is_documented() {
    // Old names count: serde lists aliases among the expected fields.
    let documented: BTreeSet<String> = documented_keys().into_iter().map(|(key, _)| key).collect();
    let sections = [
        "",
        "tls",
        "kafka",
        "kafka.sasl",
        "kafka.ssl",
        "produce",
        "consume",
        "auth",
        "http",
        "database",
        "admin",
        "quota",
        "log",
    ];
    let mut missing = Vec::new();
    for section in sections {
        for field in fields_of(section) {
            let key = if section.is_empty() {
                field
            } else {
                format!("{section}.{field}")
            };
            if sections.contains(&key.as_str()) {
                continue;
            }
            if !documented.contains(&key) {
                missing.push(key);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}
