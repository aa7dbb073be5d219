//! The target: `host:port`, or a `redis://[user[:password]@]host[:port][/db]`
//! URL as redis_exporter takes it.

use lookout_plugin_sdk::target as url;

/// Port when the target names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Where to connect and, from a URL, who to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Reads a target; the error says what is wrong with it.
pub fn parse(target: &str) -> Result<Target, String> {
    let target = target.trim();
    let (authority, is_url) = match target.split_once("://") {
        Some(("redis", rest)) => {
            if rest.contains(['?', '#']) {
                return Err(format!(
                    "target `{}`: URL query parameters are not supported; set them in the config",
                    redact(target)
                ));
            }
            let authority = rest.split('/').next().unwrap_or_default();
            let db = rest.split_once('/').map_or("", |(_, db)| db);
            // INFO covers every database; the number is accepted (as in
            // redis_exporter's URLs) but not needed.
            if !db.is_empty() && db.parse::<u32>().is_err() {
                return Err(format!(
                    "target `{}`: `/{db}` is not a database number",
                    redact(target)
                ));
            }
            (authority, true)
        }
        Some(("rediss", _)) => {
            return Err(format!(
                "target `{}`: TLS (rediss://) is not supported yet; use redis://",
                redact(target)
            ));
        }
        Some((scheme, _)) => {
            return Err(format!(
                "target `{}`: scheme `{scheme}://` is not supported; use host:port or redis://",
                redact(target)
            ));
        }
        None => (target, false),
    };
    let (userinfo, host_port) = url::split_userinfo(authority);
    if userinfo.is_some() && !is_url {
        return Err(format!(
            "target `{}`: credentials need the redis:// form",
            redact(target)
        ));
    }
    let (host, port) = url::split_host_port(host_port, DEFAULT_PORT)
        .ok_or_else(|| format!("target `{}` is not host:port", redact(target)))?;
    let (username, password) = url::decode_userinfo(userinfo)
        .map_err(|what| format!("target `{}`: bad %-escape in the {what}", redact(target)))?;
    let password = password.filter(|p| !p.is_empty());
    Ok(Target {
        host: host.to_owned(),
        port,
        username,
        password,
    })
}

/// The target with any password replaced by `xxxxx`, for messages.
pub fn redact(target: &str) -> String {
    url::redact_password(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, user: Option<&str>, password: Option<&str>) -> Target {
        Target {
            host: host.into(),
            port,
            username: user.map(Into::into),
            password: password.map(Into::into),
        }
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse("127.0.0.1:6380"),
            Ok(target("127.0.0.1", 6380, None, None))
        );
        assert_eq!(
            parse("cache.internal"),
            Ok(target("cache.internal", 6379, None, None))
        );
        assert_eq!(parse("[::1]:7000"), Ok(target("::1", 7000, None, None)));
        assert_eq!(parse("[::1]"), Ok(target("::1", 6379, None, None)));
        for bad in [
            "",
            ":6379",
            "host:port",
            "host:99999",
            "::1:6379",
            "[::1",
            "u:p@host:1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn urls_with_credentials() {
        assert_eq!(
            parse("redis://localhost:6380"),
            Ok(target("localhost", 6380, None, None))
        );
        assert_eq!(
            parse("redis://:s%40cret@10.0.0.1:6379/0"),
            Ok(target("10.0.0.1", 6379, None, Some("s@cret")))
        );
        assert_eq!(
            parse("redis://exporter:pw:with:colons@h"),
            Ok(target("h", 6379, Some("exporter"), Some("pw:with:colons")))
        );
        assert_eq!(
            parse("redis://alice@h:1"),
            Ok(target("h", 1, Some("alice"), None))
        );
    }

    #[test]
    fn unsupported_urls_are_explained_without_the_password() {
        let tls = parse("rediss://u:secret@h:6379").unwrap_err();
        assert!(tls.contains("TLS"), "{tls}");
        assert!(!tls.contains("secret"), "{tls}");
        assert!(
            parse("unix:///run/redis.sock")
                .unwrap_err()
                .contains("unix://")
        );
        assert!(
            parse("redis://h:1?password=x")
                .unwrap_err()
                .contains("query")
        );
        assert!(
            parse("redis://h:1/zero")
                .unwrap_err()
                .contains("database number")
        );
        assert!(parse("redis://:%zz@h").unwrap_err().contains("%-escape"));
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:xxxxx@h:1/0");
        assert_eq!(redact("redis://:secret@h"), "redis://:xxxxx@h");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("h:1"), "h:1");
    }
}
