//! The limits file: limitador's own format (a YAML list of limits, each with `namespace`,
//! `max_value`, `seconds`, `conditions`, `variables` and an optional `name`, as
//! limitador-server reads it), parsed into limitador's [`Limit`]s.
//!
//! Read more strictly than limitador-server does: its serde type fills a missing
//! `max_value` with 0 (a limit that refuses everything) and ignores unknown keys, so a typo
//! would silently change the limits. Here every item must name `namespace`, `max_value`,
//! `seconds`, `conditions` and `variables` (lists, maybe empty), unknown keys are refused, windows are at least one second, and two items
//! that limitador would take for one limit (same namespace, window, conditions and
//! variables) are refused. Errors name the item (`limits[2].seconds: ...`).
//!
//! It must never accept a file it cannot fully read: a bad file stops the service at start.

use limitador::limit::Limit;
use serde_yaml::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// The keys a limit may have (limitador's `Limit` fields; `id` is limitador's optional
/// identifier).
const KNOWN_KEYS: [&str; 7] = [
    "namespace",
    "max_value",
    "seconds",
    "conditions",
    "variables",
    "name",
    "id",
];

/// The keys a limit must have (limitador's serde type requires `conditions` and
/// `variables` too; `max_value` it would take as 0).
const REQUIRED_KEYS: [&str; 5] = [
    "namespace",
    "max_value",
    "seconds",
    "conditions",
    "variables",
];

/// Why a limits file was refused; the message names the file's item and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsError(String);

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitsError {}

/// Reads and parses the limits file at `path` (see [`parse_limits`]).
pub fn load_limits(path: &Path) -> Result<Vec<Limit>, LimitsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LimitsError(format!("cannot read {}: {e}", path.display())))?;
    parse_limits(&text).map_err(|e| LimitsError(format!("{}: {e}", path.display())))
}

/// Parses a limits file's text: a non-empty YAML list of limits in limitador's format.
pub fn parse_limits(yaml: &str) -> Result<Vec<Limit>, LimitsError> {
    let document: Value =
        serde_yaml::from_str(yaml).map_err(|e| LimitsError(format!("not YAML: {e}")))?;
    let Value::Sequence(items) = document else {
        return Err(LimitsError(
            "expected a list of limits (limitador's format: - namespace: ..., max_value: ..., \
             seconds: ..., conditions: [...], variables: [...])"
                .to_string(),
        ));
    };
    if items.is_empty() {
        return Err(LimitsError("the list of limits is empty".to_string()));
    }
    let mut limits: Vec<Limit> = Vec::with_capacity(items.len());
    // limitador keys a limit by namespace, window, conditions and variables (not by
    // max_value or name): two items with the same key would be one limit.
    let mut seen: HashMap<Limit, usize> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let limit = parse_item(index, item)?;
        if let Some(first) = seen.get(&limit) {
            return Err(LimitsError(format!(
                "limits[{index}] has the same namespace, seconds, conditions and variables as \
                 limits[{first}]: limitador would count them as one limit"
            )));
        }
        seen.insert(limit.clone(), index);
        limits.push(limit);
    }
    Ok(limits)
}

/// One item of the list, checked, then read by limitador's own serde type.
fn parse_item(index: usize, item: Value) -> Result<Limit, LimitsError> {
    let Value::Mapping(fields) = &item else {
        return Err(LimitsError(format!("limits[{index}]: expected a mapping")));
    };
    for key in fields.keys() {
        let Some(key) = key.as_str() else {
            return Err(LimitsError(format!(
                "limits[{index}]: keys must be strings, found {key:?}"
            )));
        };
        if !KNOWN_KEYS.contains(&key) {
            return Err(LimitsError(format!(
                "limits[{index}].{key}: unknown key (expected one of: {})",
                KNOWN_KEYS.join(", ")
            )));
        }
    }
    for key in REQUIRED_KEYS {
        if !fields.contains_key(key) {
            return Err(LimitsError(format!("limits[{index}].{key}: missing")));
        }
    }
    let limit: Limit =
        serde_yaml::from_value(item).map_err(|e| LimitsError(format!("limits[{index}]: {e}")))?;
    if limit.namespace().as_ref().is_empty() {
        return Err(LimitsError(format!(
            "limits[{index}].namespace: must not be empty"
        )));
    }
    if limit.seconds() == 0 {
        return Err(LimitsError(format!(
            "limits[{index}].seconds: must be at least 1"
        )));
    }
    Ok(limit)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ONE: &str = r#"
- namespace: mfa-gate
  max_value: 3
  seconds: 300
  name: per-user
  conditions: ["descriptors[0].mfa_gate_push != ''"]
  variables: ["descriptors[0].user"]
"#;

    fn error_of(yaml: &str) -> String {
        parse_limits(yaml).unwrap_err().to_string()
    }

    #[test]
    fn reads_limitadors_format() {
        let limits = parse_limits(ONE).unwrap();
        assert_eq!(limits.len(), 1);
        let limit = &limits[0];
        assert_eq!(limit.namespace().as_ref(), "mfa-gate");
        assert_eq!(limit.max_value(), 3);
        assert_eq!(limit.seconds(), 300);
        assert_eq!(limit.name(), Some("per-user"));
        assert_eq!(
            limit.variables().into_iter().collect::<Vec<_>>(),
            ["descriptors[0].user"]
        );
        assert_eq!(
            limit.conditions().into_iter().collect::<Vec<_>>(),
            ["descriptors[0].mfa_gate_push != ''"]
        );
    }

    #[test]
    fn the_shipped_demo_limits_parse() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/ratelimit-limits.yaml");
        let limits = load_limits(&path).unwrap();
        let mut shapes: Vec<(u64, u64)> = limits
            .iter()
            .map(|l| (l.max_value(), l.seconds()))
            .collect();
        shapes.sort_unstable();
        assert_eq!(shapes, [(3, 300), (10, 3600), (20, 300)]);
        assert!(limits.iter().all(|l| l.namespace().as_ref() == "mfa-gate"));
    }

    #[test]
    fn refuses_a_file_that_is_not_a_list_of_limits() {
        assert!(error_of("namespace: a").starts_with("expected a list of limits"));
        assert_eq!(error_of("[]"), "the list of limits is empty");
        assert!(error_of("- [1, 2]").starts_with("limits[0]: expected a mapping"));
        assert!(error_of("- {namespace: a\n").starts_with("not YAML"));
    }

    #[test]
    fn refuses_missing_and_unknown_keys() {
        assert_eq!(
            error_of("- {namespace: a, seconds: 60, conditions: [], variables: []}"),
            "limits[0].max_value: missing"
        );
        assert_eq!(
            error_of("- {namespace: a, max_value: 1, seconds: 60, conditions: [], variables: []}\n- {namespace: a, max_values: 1, seconds: 60}"),
            "limits[1].max_values: unknown key (expected one of: namespace, max_value, seconds, \
             conditions, variables, name, id)"
        );
    }

    #[test]
    fn refuses_bad_values() {
        assert_eq!(
            error_of("- {namespace: a, max_value: 1}"),
            "limits[0].seconds: missing"
        );
        assert_eq!(
            error_of("- {namespace: a, max_value: 1, seconds: 1, conditions: []}"),
            "limits[0].variables: missing"
        );
        assert_eq!(
            error_of("- {namespace: a, max_value: 1, seconds: 0, conditions: [], variables: []}"),
            "limits[0].seconds: must be at least 1"
        );
        assert_eq!(
            error_of("- {namespace: '', max_value: 1, seconds: 1, conditions: [], variables: []}"),
            "limits[0].namespace: must not be empty"
        );
        let negative =
            error_of("- {namespace: a, max_value: -1, seconds: 1, conditions: [], variables: []}");
        assert!(negative.starts_with("limits[0]: "), "{negative}");
        let bad_cel = error_of(
            "- {namespace: a, max_value: 1, seconds: 1, conditions: ['a =='], variables: []}",
        );
        assert!(bad_cel.starts_with("limits[0]: "), "{bad_cel}");
    }

    #[test]
    fn refuses_two_items_limitador_would_merge() {
        let twice =
            "- {namespace: a, max_value: 1, seconds: 60, conditions: [], variables: ['descriptors[0].user']}\n\
                     - {namespace: a, max_value: 5, seconds: 60, conditions: [], variables: ['descriptors[0].user']}";
        assert_eq!(
            error_of(twice),
            "limits[1] has the same namespace, seconds, conditions and variables as limits[0]: \
             limitador would count them as one limit"
        );
        let apart = "- {namespace: a, max_value: 1, seconds: 60, conditions: [], variables: ['descriptors[0].user']}\n\
                     - {namespace: a, max_value: 5, seconds: 3600, conditions: [], variables: ['descriptors[0].user']}";
        assert_eq!(parse_limits(apart).unwrap().len(), 2);
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = load_limits(Path::new("/nonexistent/limits.yaml")).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("cannot read /nonexistent/limits.yaml: "));
    }
}
