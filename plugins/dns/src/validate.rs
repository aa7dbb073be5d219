//! blackbox_exporter's `validate_answer_rrs`, `validate_authority_rrs` and
//! `validate_additional_rrs`: regexes applied to each record of a section
//! in miekg's text form (see [`crate::text`]), with blackbox's semantics:
//!
//! - `fail_if_matches_regexp`: fails if any record matches any regex;
//! - `fail_if_not_matches_regexp`: fails if any record does not match one
//!   of the regexes, or if the section is empty;
//! - `fail_if_all_match_regexp`: fails unless every record matches every
//!   regex (blackbox's meaning, despite the name; an empty section passes);
//! - `fail_if_none_matches_regexp`: fails unless some record matches some
//!   regex (an empty section fails).
//!
//! Regexes are unanchored, as Go's `regexp.MatchString`.

use lookout_plugin_sdk::PluginError;
use regex::Regex;
use serde::Deserialize;

use crate::wire::Record;

/// One `validate_*_rrs` section of the configuration.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RrValidatorConfig {
    fail_if_matches_regexp: Vec<String>,
    fail_if_all_match_regexp: Vec<String>,
    fail_if_not_matches_regexp: Vec<String>,
    fail_if_none_matches_regexp: Vec<String>,
}

/// A section's regexes, compiled.
pub struct RrValidator {
    matches: Vec<Regex>,
    all_match: Vec<Regex>,
    not_matches: Vec<Regex>,
    none_matches: Vec<Regex>,
}

impl RrValidator {
    /// Compiles the regexes of the section named `field`
    /// (`validate_answer_rrs` …); a bad regex is a config error naming it.
    pub fn compile(config: &RrValidatorConfig, field: &str) -> Result<Self, PluginError> {
        let compile = |list: &[String], key: &str| -> Result<Vec<Regex>, PluginError> {
            list.iter()
                .enumerate()
                .map(|(i, pattern)| {
                    Regex::new(pattern).map_err(|e| {
                        PluginError::config(format!("{field}.{key}[{i}] {pattern:?}: {e}"))
                    })
                })
                .collect()
        };
        Ok(Self {
            matches: compile(&config.fail_if_matches_regexp, "fail_if_matches_regexp")?,
            all_match: compile(&config.fail_if_all_match_regexp, "fail_if_all_match_regexp")?,
            not_matches: compile(
                &config.fail_if_not_matches_regexp,
                "fail_if_not_matches_regexp",
            )?,
            none_matches: compile(
                &config.fail_if_none_matches_regexp,
                "fail_if_none_matches_regexp",
            )?,
        })
    }

    /// Checks `records`; the error says which rule failed and on what.
    pub fn check(&self, records: &[Record]) -> Result<(), String> {
        if records.is_empty() && !self.not_matches.is_empty() {
            return Err("fail_if_not_matches_regexp is set but there are no records".into());
        }
        if records.is_empty() && !self.none_matches.is_empty() {
            return Err("fail_if_none_matches_regexp is set but there are no records".into());
        }
        let mut all_match = true;
        let mut any_match = false;
        for record in records {
            let text = record.to_string();
            if let Some(re) = self.matches.iter().find(|re| re.is_match(&text)) {
                return Err(format!(
                    "record {text:?} matched fail_if_matches_regexp {:?}",
                    re.as_str()
                ));
            }
            if self.all_match.iter().any(|re| !re.is_match(&text)) {
                all_match = false;
            }
            if let Some(re) = self.not_matches.iter().find(|re| !re.is_match(&text)) {
                return Err(format!(
                    "record {text:?} did not match fail_if_not_matches_regexp {:?}",
                    re.as_str()
                ));
            }
            if self.none_matches.iter().any(|re| re.is_match(&text)) {
                any_match = true;
            }
        }
        if !self.all_match.is_empty() && !all_match {
            return Err("not every record matched fail_if_all_match_regexp".into());
        }
        if !self.none_matches.is_empty() && !any_match {
            return Err("no record matched fail_if_none_matches_regexp".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::RData;

    fn a(name: &str, ip: [u8; 4]) -> Record {
        Record {
            name: name.into(),
            rtype: 1,
            class: 1,
            ttl: 300,
            data: RData::A(Some(ip.into())),
        }
    }

    fn validator(json: &str) -> RrValidator {
        let config: RrValidatorConfig = serde_json::from_str(json).unwrap();
        RrValidator::compile(&config, "validate_answer_rrs").unwrap()
    }

    #[test]
    fn regexes_see_miekgs_text_form() {
        let records = [a("www.example.com.", [192, 0, 2, 1])];
        let v = validator(
            r#"{"fail_if_not_matches_regexp": ["^www\\.example\\.com\\.\t300\tIN\tA\t192\\.0\\.2\\.1$"]}"#,
        );
        assert_eq!(v.check(&records), Ok(()));
    }

    #[test]
    fn each_rule_fails_as_blackbox_does() {
        let two = [
            a("a.example.", [192, 0, 2, 1]),
            a("b.example.", [198, 51, 100, 1]),
        ];
        let check = |json: &str, records: &[Record]| validator(json).check(records).is_ok();

        // Any record matching fails.
        assert!(!check(r#"{"fail_if_matches_regexp": ["198\\.51"]}"#, &two));
        assert!(check(r#"{"fail_if_matches_regexp": ["203\\.0"]}"#, &two));
        assert!(check(r#"{"fail_if_matches_regexp": ["x"]}"#, &[]));

        // Any record not matching fails; no records fails.
        assert!(!check(
            r#"{"fail_if_not_matches_regexp": ["192\\.0"]}"#,
            &two
        ));
        assert!(check(
            r#"{"fail_if_not_matches_regexp": ["\\.example\\."]}"#,
            &two
        ));
        assert!(!check(r#"{"fail_if_not_matches_regexp": ["x"]}"#, &[]));

        // Every record must match every regex; no records passes.
        assert!(check(
            r#"{"fail_if_all_match_regexp": ["example", "IN\tA"]}"#,
            &two
        ));
        assert!(!check(
            r#"{"fail_if_all_match_regexp": ["example", "192"]}"#,
            &two
        ));
        assert!(check(r#"{"fail_if_all_match_regexp": ["x"]}"#, &[]));

        // Some record must match some regex; no records fails.
        assert!(check(
            r#"{"fail_if_none_matches_regexp": ["nope", "198\\.51"]}"#,
            &two
        ));
        assert!(!check(r#"{"fail_if_none_matches_regexp": ["nope"]}"#, &two));
        assert!(!check(r#"{"fail_if_none_matches_regexp": ["x"]}"#, &[]));

        // Nothing configured: anything passes.
        assert!(check("{}", &[]));
        assert!(check("{}", &two));
    }

    #[test]
    fn failures_say_which_record_and_regex() {
        let records = [a("a.example.", [192, 0, 2, 1])];
        let error = validator(r#"{"fail_if_matches_regexp": ["192"]}"#)
            .check(&records)
            .unwrap_err();
        assert!(
            error.contains("a.example.") && error.contains("\"192\""),
            "{error}"
        );
    }

    #[test]
    fn a_bad_regex_is_a_config_error_naming_the_field() {
        let config: RrValidatorConfig =
            serde_json::from_str(r#"{"fail_if_none_matches_regexp": ["ok", "(unclosed"]}"#)
                .unwrap();
        let Err(PluginError::Config(message)) =
            RrValidator::compile(&config, "validate_authority_rrs")
        else {
            panic!("not a config error");
        };
        assert!(
            message.starts_with("validate_authority_rrs.fail_if_none_matches_regexp[1]"),
            "{message}"
        );
        assert!(serde_json::from_str::<RrValidatorConfig>(r#"{"fail_if": []}"#).is_err());
    }
}
