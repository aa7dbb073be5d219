//! The part of Prometheus' `http_config` a plugin can honour.

use std::fmt;

use serde::Deserialize;

use crate::PluginError;
use crate::encoding::base64;

/// The part of Prometheus' `http_config` (prometheus/common
/// `HTTPClientConfig`) a plugin can honour: credentials and redirects. TLS
/// settings and proxies are the host's.
///
/// Embed it in a plugin's configuration under Prometheus' field name; every
/// field is optional and an unknown field is an error:
///
/// ```
/// use lookout_plugin_sdk::{http, parse_config};
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config {
///     url: String,
///     #[serde(default)]
///     http_config: http::HttpClientConfig,
/// }
///
/// let config: Config = parse_config(
///     r#"{"url": "https://hooks.example.com/x",
///         "http_config": {"bearer_token": "s3cret", "follow_redirects": false}}"#,
/// )
/// .unwrap();
/// assert_eq!(
///     config.http_config.authorization().unwrap().as_deref(),
///     Some("Bearer s3cret"),
/// );
/// assert!(!config.http_config.follow_redirects());
/// ```
///
/// In JSON:
///
/// ```json
/// {
///   "bearer_token": "…",
///   "basic_auth": {"username": "…", "password": "…"},
///   "authorization": {"type": "Bearer", "credentials": "…"},
///   "follow_redirects": true
/// }
/// ```
///
/// At most one of `bearer_token`, `basic_auth` and `authorization` may be
/// set ([`authorization`](Self::authorization) checks it). Its `Debug`
/// output leaves the secrets out.
#[derive(Deserialize, Default, Clone, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpClientConfig {
    /// Sent as `Authorization: Bearer <bearer_token>`.
    pub bearer_token: Option<String>,
    /// Sent as `Authorization: Basic <base64(username:password)>`.
    pub basic_auth: Option<BasicAuth>,
    /// Sent as `Authorization: <type> <credentials>`.
    pub authorization: Option<Authorization>,
    /// Whether redirects are followed; `None` (not configured) means yes,
    /// as in Prometheus. See [`follow_redirects`](Self::follow_redirects).
    pub follow_redirects: Option<bool>,
}

/// `http_config.basic_auth`: a username and an optional password.
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// Required.
    pub username: String,
    /// Empty when not configured.
    #[serde(default)]
    pub password: String,
}

/// `http_config.authorization`: an `Authorization` header of any scheme.
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme, `type` in the configuration; `Bearer` when not
    /// configured.
    #[serde(default = "bearer", rename = "type")]
    pub kind: String,
    /// Required.
    pub credentials: String,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

impl HttpClientConfig {
    /// The `authorization` header value, if credentials are configured;
    /// [`PluginError::Config`] when more than one kind is.
    pub fn authorization(&self) -> Result<Option<String>, PluginError> {
        match (&self.bearer_token, &self.basic_auth, &self.authorization) {
            (None, None, None) => Ok(None),
            (Some(token), None, None) => Ok(Some(format!("Bearer {token}"))),
            (None, Some(basic), None) => {
                let pair = format!("{}:{}", basic.username, basic.password);
                Ok(Some(format!("Basic {}", base64(pair.as_bytes()))))
            }
            (None, None, Some(auth)) => Ok(Some(format!("{} {}", auth.kind, auth.credentials))),
            _ => Err(PluginError::config(
                "http_config: at most one of bearer_token, basic_auth and authorization may be set",
            )),
        }
    }

    /// Whether redirects are to be followed: `follow_redirects`, true
    /// unless configured otherwise.
    pub fn follow_redirects(&self) -> bool {
        self.follow_redirects.unwrap_or(true)
    }

    /// POSTs `body` as JSON the way Alertmanager's integrations do: with
    /// lookout's user agent, following up to 10 redirects unless this
    /// configuration says not to, and `authorization` as the credentials
    /// (usually [`authorization`](Self::authorization)`()?`). A transport
    /// failure keeps its reason and says what was being done (`what`:
    /// "posting to Slack").
    pub fn post_json(
        &self,
        url: &str,
        body: String,
        timeout: std::time::Duration,
        authorization: Option<String>,
        what: &str,
    ) -> Result<super::Response, PluginError> {
        const MAX_REDIRECTS: u32 = 10;
        let mut request = super::Request::post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                format!("lookout/{}", env!("CARGO_PKG_VERSION")),
            )
            .body(body)
            .timeout(timeout)
            .follow_redirects(if self.follow_redirects() {
                MAX_REDIRECTS
            } else {
                0
            });
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().map_err(|error| {
            PluginError::from(crate::Error::new(
                error.reason(),
                format!("{what}: {error}"),
            ))
        })
    }
}

/// Shows which settings are present, not the secrets.
impl fmt::Debug for HttpClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientConfig")
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| Redacted),
            )
            .field("basic_auth", &self.basic_auth)
            .field("authorization", &self.authorization)
            .field("follow_redirects", &self.follow_redirects)
            .finish()
    }
}

/// Shows the username, not the password.
impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &Redacted)
            .finish()
    }
}

/// Shows the scheme, not the credentials.
impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("kind", &self.kind)
            .field("credentials", &Redacted)
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_config;

    #[test]
    fn base64_vectors() {
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        // RFC 4648's test vectors.
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn credentials() {
        let config: HttpClientConfig =
            parse_config(r#"{"basic_auth": {"username": "u", "password": "p"}}"#).unwrap();
        assert_eq!(
            config.authorization().unwrap().as_deref(),
            Some("Basic dTpw")
        );
        let config: HttpClientConfig =
            parse_config(r#"{"basic_auth": {"username": "u"}}"#).unwrap();
        assert_eq!(
            config.authorization().unwrap().as_deref(),
            Some("Basic dTo=")
        );
        let config: HttpClientConfig = parse_config(r#"{"bearer_token": "t"}"#).unwrap();
        assert_eq!(config.authorization().unwrap().as_deref(), Some("Bearer t"));
        let config: HttpClientConfig =
            parse_config(r#"{"authorization": {"credentials": "c"}}"#).unwrap();
        assert_eq!(config.authorization().unwrap().as_deref(), Some("Bearer c"));
        let config: HttpClientConfig =
            parse_config(r#"{"authorization": {"type": "Token", "credentials": "c"}}"#).unwrap();
        assert_eq!(config.authorization().unwrap().as_deref(), Some("Token c"));
        assert_eq!(HttpClientConfig::default().authorization(), Ok(None));
    }

    #[test]
    fn at_most_one_kind_of_credentials() {
        let both = HttpClientConfig {
            bearer_token: Some("t".into()),
            basic_auth: Some(BasicAuth {
                username: "u".into(),
                password: String::new(),
            }),
            ..Default::default()
        };
        assert_eq!(
            both.authorization(),
            Err(PluginError::Config(
                "http_config: at most one of bearer_token, basic_auth and authorization may be set"
                    .into()
            ))
        );
        let config: HttpClientConfig =
            parse_config(r#"{"bearer_token": "t", "authorization": {"credentials": "c"}}"#)
                .unwrap();
        assert!(matches!(
            config.authorization(),
            Err(PluginError::Config(_))
        ));
    }

    #[test]
    fn redirects_are_followed_unless_configured_off() {
        assert!(HttpClientConfig::default().follow_redirects());
        let config: HttpClientConfig = parse_config(r#"{"follow_redirects": true}"#).unwrap();
        assert!(config.follow_redirects());
        let config: HttpClientConfig = parse_config(r#"{"follow_redirects": false}"#).unwrap();
        assert!(!config.follow_redirects());
    }

    #[test]
    fn unknown_fields_are_errors() {
        assert!(parse_config::<HttpClientConfig>(r#"{"bearer_token_file": "x"}"#).is_err());
        assert!(parse_config::<HttpClientConfig>(r#"{"tls_config": {}}"#).is_err());
        assert!(
            parse_config::<HttpClientConfig>(r#"{"basic_auth": {"username": "u", "x": 1}}"#)
                .is_err()
        );
        assert!(parse_config::<HttpClientConfig>(r#"{"basic_auth": {"password": "p"}}"#).is_err());
        assert!(
            parse_config::<HttpClientConfig>(r#"{"authorization": {"type": "Bearer"}}"#).is_err()
        );
    }

    #[test]
    fn debug_leaves_secrets_out() {
        let config: HttpClientConfig = parse_config(
            r#"{"bearer_token": "s1", "basic_auth": {"username": "u", "password": "s2"},
                "authorization": {"type": "Token", "credentials": "s3"}}"#,
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("s1") && !debug.contains("s2") && !debug.contains("s3"));
        assert!(debug.contains("\"u\"") && debug.contains("Token"));
    }
}
