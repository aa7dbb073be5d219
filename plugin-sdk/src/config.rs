//! Plugin configuration: the JSON string the host passes to every call.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::PluginError;

/// Parses a plugin's JSON configuration into its typed form.
///
/// An empty (or all-blank) string is read as `{}`, so a configuration whose
/// fields all have defaults needs nothing from the job. Errors become
/// [`PluginError::Config`] carrying serde's message (which names the field,
/// line and column). The `export_*!` macros call this before the plugin runs.
///
/// Give configuration structs `#[serde(deny_unknown_fields)]`, so that a
/// misspelt option is reported instead of silently ignored.
///
/// ```
/// use lookout_plugin_sdk::{parse_config, PluginError};
///
/// #[derive(serde::Deserialize, Default)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config { port: u16 }
///
/// assert_eq!(parse_config::<Config>("").unwrap().port, 0);
/// assert_eq!(parse_config::<Config>(r#"{"port": 80}"#).unwrap().port, 80);
/// assert!(matches!(parse_config::<Config>(r#"{"prot": 80}"#), Err(PluginError::Config(_))));
/// ```
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, PluginError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|error| PluginError::Config(error.to_string()))
}

/// The configuration of a plugin that takes none: accepts `""` and `{}`,
/// rejects any field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Required {
        url: String,
        #[serde(default)]
        retries: u8,
    }

    #[test]
    fn empty_and_blank_strings_mean_an_empty_object() {
        assert_eq!(parse_config::<NoConfig>(""), Ok(NoConfig {}));
        assert_eq!(parse_config::<NoConfig>("  \n"), Ok(NoConfig {}));
        assert_eq!(parse_config::<NoConfig>("{}"), Ok(NoConfig {}));
    }

    #[test]
    fn serde_messages_become_config_errors() {
        let Err(PluginError::Config(message)) = parse_config::<Required>("") else {
            panic!("a missing field must be a config error");
        };
        assert!(message.contains("missing field `url`"), "{message}");

        let Err(PluginError::Config(message)) =
            parse_config::<Required>(r#"{"url": "x", "retrys": 1}"#)
        else {
            panic!("an unknown field must be a config error");
        };
        assert!(message.contains("unknown field `retrys`"), "{message}");

        let Err(PluginError::Config(message)) = parse_config::<Required>("{") else {
            panic!("invalid JSON must be a config error");
        };
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn no_config_rejects_fields() {
        assert!(matches!(
            parse_config::<NoConfig>(r#"{"x": 1}"#),
            Err(PluginError::Config(_))
        ));
    }

    #[test]
    fn valid_config_parses() {
        assert_eq!(
            parse_config::<Required>(r#"{"url": "http://a", "retries": 2}"#),
            Ok(Required {
                url: "http://a".into(),
                retries: 2
            })
        );
    }
}
