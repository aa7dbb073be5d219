//! The target: `host:port`, or a libpq URL
//! `postgres://[user[:password]@]host[:port][/database][?sslmode=disable]`.

use lookout_plugin_sdk::target as url;

/// Port when the target names none.
pub const DEFAULT_PORT: u16 = 5432;

/// What a target says: where to connect and, from a URL, as whom.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub sslmode: Option<String>,
}

/// Reads a target; the error says what is wrong with it.
pub fn parse(target: &str) -> Result<Target, String> {
    let target = target.trim();
    let shown = redact(target);
    let Some((scheme, rest)) = target.split_once("://") else {
        if target.contains('@') || target.contains('/') {
            return Err(format!(
                "target `{shown}`: credentials and a database need the postgres:// form"
            ));
        }
        let (host, port) = url::split_host_port(target, DEFAULT_PORT)
            .ok_or_else(|| format!("target `{shown}` is not host:port"))?;
        return Ok(Target {
            host: host.to_owned(),
            port,
            ..Target::default()
        });
    };
    if scheme != "postgres" && scheme != "postgresql" {
        return Err(format!(
            "target `{shown}`: scheme `{scheme}://` is not supported; use host:port or postgres://"
        ));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host_port) = url::split_userinfo(authority);
    if host_port.contains(',') {
        return Err(format!(
            "target `{shown}`: several hosts are not supported; give one target per host"
        ));
    }
    let (host, port) = url::split_host_port(host_port, DEFAULT_PORT)
        .ok_or_else(|| format!("target `{shown}`: `{host_port}` is not host[:port]"))?;
    let bad_escape = |what: &str| format!("target `{shown}`: bad %-escape in the {what}");
    let decode = |part: &str, what: &str| url::percent_decode(part).ok_or_else(|| bad_escape(what));
    let (user, password) = url::decode_userinfo(userinfo).map_err(bad_escape)?;
    let mut parsed = Target {
        host: host.to_owned(),
        port,
        user,
        password,
        ..Target::default()
    };
    parsed.database = Some(decode(database, "database")?).filter(|d| !d.is_empty());
    for parameter in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        let value = decode(value, name)?;
        match name {
            "sslmode" => parsed.sslmode = Some(value),
            "user" => parsed.user = Some(value),
            "password" => parsed.password = Some(value),
            "dbname" => parsed.database = Some(value),
            other => {
                return Err(format!(
                    "target `{shown}`: URL parameter `{other}` is not supported \
                     (only sslmode, user, password, dbname)"
                ));
            }
        }
    }
    Ok(parsed)
}

/// The target with its password (in the authority or a `password=`
/// parameter) replaced by `xxxxx`, for messages.
pub fn redact(target: &str) -> String {
    let redacted = url::redact_password(target);
    if !target.contains("://") {
        return redacted;
    }
    let Some((before, query)) = redacted.split_once('?') else {
        return redacted;
    };
    let parameters: Vec<&str> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some(("password", _)) => "password=xxxxx",
            _ => p,
        })
        .collect();
    format!("{before}?{}", parameters.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let t = parse("db.internal:6432").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("db.internal", 6432));
        assert_eq!(parse("db").unwrap().port, 5432);
        assert_eq!(parse("[::1]:5433").unwrap().host, "::1");
        for bad in ["", ":5432", "h:port", "h:70000", "u@h:1", "h:1/db", "[::1"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn urls() {
        let t = parse("postgres://exporter:p%40ss@10.0.0.5:5433/app?sslmode=disable").unwrap();
        assert_eq!(
            t,
            Target {
                host: "10.0.0.5".into(),
                port: 5433,
                user: Some("exporter".into()),
                password: Some("p@ss".into()),
                database: Some("app".into()),
                sslmode: Some("disable".into()),
            }
        );
        let t = parse("postgresql://h/?user=u&password=pw&dbname=d").unwrap();
        assert_eq!(
            (t.user, t.password, t.database, t.port),
            (Some("u".into()), Some("pw".into()), Some("d".into()), 5432)
        );
        let t = parse("postgres://alice@h").unwrap();
        assert_eq!((t.user.as_deref(), t.password), (Some("alice"), None));
    }

    #[test]
    fn unsupported_urls_are_explained_without_the_password() {
        let error = parse("mysql://u:secret@h").unwrap_err();
        assert!(
            error.contains("mysql://") && !error.contains("secret"),
            "{error}"
        );
        let error = parse("postgres://u:secret@h1,h2/db").unwrap_err();
        assert!(error.contains("several hosts"), "{error}");
        let error = parse("postgres://h/db?password=secret&connect_timeout=5").unwrap_err();
        assert!(
            error.contains("connect_timeout") && !error.contains("secret"),
            "{error}"
        );
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db?sslmode=disable"),
            "postgres://u:xxxxx@h:1/db?sslmode=disable"
        );
        assert_eq!(
            redact("postgres://h/db?password=secret&user=u"),
            "postgres://h/db?password=xxxxx&user=u"
        );
        assert_eq!(redact("h:5432"), "h:5432");
    }
}
