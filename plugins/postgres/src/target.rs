//! The target: `host:port`, or a libpq URL
//! `postgres://[user[:password]@]host[:port][/database][?sslmode=disable]`.

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
        let (host, port) =
            split_host_port(target).ok_or_else(|| format!("target `{shown}` is not host:port"))?;
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
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    if host_port.contains(',') {
        return Err(format!(
            "target `{shown}`: several hosts are not supported; give one target per host"
        ));
    }
    let (host, port) = split_host_port(host_port)
        .ok_or_else(|| format!("target `{shown}`: `{host_port}` is not host[:port]"))?;
    let decode = |part: &str, what: &str| {
        percent_decode(part).ok_or_else(|| format!("target `{shown}`: bad %-escape in the {what}"))
    };
    let mut parsed = Target {
        host: host.to_owned(),
        port,
        ..Target::default()
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        parsed.user = Some(decode(user, "user name")?).filter(|u| !u.is_empty());
        parsed.password = password.map(|p| decode(p, "password")).transpose()?;
    }
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

/// `host:port`, `[v6]:port` or a bare host (default port).
fn split_host_port(host_port: &str) -> Option<(&str, u16)> {
    if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => DEFAULT_PORT,
            _ => after.strip_prefix(':')?.parse().ok()?,
        };
        return (!host.is_empty()).then_some((host, port));
    }
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (host_port, DEFAULT_PORT),
    };
    (!host.is_empty() && !host.contains(':')).then_some((host, port))
}

/// `%XX` escapes decoded; `None` for a broken escape or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The target with its password (in the authority or a `password=`
/// parameter) replaced by `xxxxx`, for messages.
pub fn redact(target: &str) -> String {
    let Some((scheme, rest)) = target.split_once("://") else {
        return target.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{user}:xxxxx@{host}")
        }
        _ => authority.to_owned(),
    };
    let query = query.map(|query| {
        let parameters: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some(("password", _)) => "password=xxxxx".to_owned(),
                _ => p.to_owned(),
            })
            .collect();
        format!("?{}", parameters.join("&"))
    });
    format!("{scheme}://{authority}{path}{}", query.unwrap_or_default())
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
