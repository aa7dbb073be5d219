//! Reading targets: `host:port` and the authority of a URL,
//! `scheme://[user[:password]@]host[:port]/…`.
//!
//! The pieces every network plugin needs to turn its target into where to
//! connect and as whom, so that `[::1]:6379`, a bare IPv6 address or a
//! `%40` in a password read the same in every plugin. Which schemes,
//! paths and parameters a target may have stays the plugin's business.
//!
//! ```
//! use lookout_plugin_sdk::target;
//!
//! let url = "redis://exporter:s%40cret@[::1]:6380/0";
//! let (_scheme, rest) = url.split_once("://").unwrap();
//! let authority = rest.split('/').next().unwrap();
//! let (userinfo, host_port) = target::split_userinfo(authority);
//! assert_eq!(target::split_host_port(host_port, 6379), Some(("::1", 6380)));
//! let (user, password) = target::decode_userinfo(userinfo).unwrap();
//! assert_eq!((user.as_deref(), password.as_deref()), (Some("exporter"), Some("s@cret")));
//! assert_eq!(target::redact_password(url), "redis://exporter:xxxxx@[::1]:6380/0");
//! ```

/// Splits `[v6]`, `[v6]:port`, `host:port` or a bare host into the host
/// (without brackets) and the port text, if any. A bare IPv6 address (more
/// than one colon, no brackets) is all host, as blackbox_exporter reads it.
///
/// The port is not checked: plugins differ in their defaults and whether
/// `0` or an empty port is allowed. The error says what is wrong.
pub fn split_port(host_port: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("no closing `]`")?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or("junk after `]`")?)),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            // More than one colon: an IPv6 address without a port.
            _ => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("empty host");
    }
    Ok((host, port))
}

/// `host:port`, `[v6]:port` or a bare host (then `default_port`); `None`
/// for anything else, a bare IPv6 address included (it needs brackets to
/// tell its last group from a port).
pub fn split_host_port(host_port: &str, default_port: u16) -> Option<(&str, u16)> {
    let (host, port) = split_port(host_port).ok()?;
    if !host_port.starts_with('[') && host.contains(':') {
        return None;
    }
    let port = match port {
        None => default_port,
        Some(port) => port.parse().ok()?,
    };
    Some((host, port))
}

/// Splits a URL authority at its last `@` into the userinfo, if any, and
/// `host[:port]`.
pub fn split_userinfo(authority: &str) -> (Option<&str>, &str) {
    match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    }
}

/// The user name (`None` when empty) and password of a URL's
/// `user[:password]`, %-decoded; the password may hold colons. The error
/// names the part with a broken escape: `user name` or `password`.
pub fn decode_userinfo(
    userinfo: Option<&str>,
) -> Result<(Option<String>, Option<String>), &'static str> {
    let Some(userinfo) = userinfo else {
        return Ok((None, None));
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = percent_decode(user).ok_or("user name")?;
    let password = password
        .map(|p| percent_decode(p).ok_or("password"))
        .transpose()?;
    Ok((Some(user).filter(|u| !u.is_empty()), password))
}

/// `%XX` escapes decoded; `None` for a broken escape or invalid UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
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

/// The URL with the password of its userinfo replaced by `xxxxx`, for
/// messages and logs; anything else (a `host:port`, a URL without a
/// password) unchanged. The authority ends at the first `/` or `?`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:xxxxx@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_split_as_blackbox_does() {
        assert_eq!(split_port("h:53"), Ok(("h", Some("53"))));
        assert_eq!(split_port("h"), Ok(("h", None)));
        assert_eq!(split_port("h:"), Ok(("h", Some(""))));
        assert_eq!(split_port("[::1]:53"), Ok(("::1", Some("53"))));
        assert_eq!(split_port("[::1]"), Ok(("::1", None)));
        assert_eq!(split_port("::1"), Ok(("::1", None)));
        assert_eq!(split_port("[::1"), Err("no closing `]`"));
        assert_eq!(split_port("[::1]53"), Err("junk after `]`"));
        assert_eq!(split_port(":53"), Err("empty host"));
        assert_eq!(split_port("[]:53"), Err("empty host"));
    }

    #[test]
    fn host_ports_with_a_default() {
        assert_eq!(split_host_port("db:6432", 5432), Some(("db", 6432)));
        assert_eq!(split_host_port("db", 5432), Some(("db", 5432)));
        assert_eq!(split_host_port("[::1]", 1), Some(("::1", 1)));
        assert_eq!(split_host_port("[::1]:7", 1), Some(("::1", 7)));
        for bad in [
            "", ":1", "h:", "h:port", "h:70000", "::1:6379", "::1", "[::1",
        ] {
            assert_eq!(split_host_port(bad, 1), None, "{bad:?}");
        }
    }

    #[test]
    fn userinfo() {
        assert_eq!(split_userinfo("u:p@x@h:1"), (Some("u:p@x"), "h:1"));
        assert_eq!(split_userinfo("h:1"), (None, "h:1"));
        assert_eq!(decode_userinfo(None), Ok((None, None)));
        assert_eq!(
            decode_userinfo(Some("a%20b:p:w%40")),
            Ok((Some("a b".into()), Some("p:w@".into())))
        );
        assert_eq!(decode_userinfo(Some(":pw")), Ok((None, Some("pw".into()))));
        assert_eq!(
            decode_userinfo(Some("alice")),
            Ok((Some("alice".into()), None))
        );
        assert_eq!(decode_userinfo(Some("%zz:pw")), Err("user name"));
        assert_eq!(decode_userinfo(Some("u:%4")), Err("password"));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("redis://u:secret@h:1/0"),
            "redis://u:xxxxx@h:1/0"
        );
        assert_eq!(redact_password("redis://:secret@h"), "redis://:xxxxx@h");
        assert_eq!(
            redact_password("postgres://u:s@h/db?x=1"),
            "postgres://u:xxxxx@h/db?x=1"
        );
        assert_eq!(redact_password("redis://u@h:1"), "redis://u@h:1");
        assert_eq!(redact_password("h:1"), "h:1");
    }
}
