//! The little URL handling the client needs: split an `http(s)` URL into the
//! parts wasi:http wants, and resolve a redirect's `Location` against it.

use std::fmt;

use super::Error;
use crate::FailureReason;

/// An `http(s)` URL split the way a request needs it (the way wasi:http's
/// `outgoing-request` takes it, and an HTTP/1.1 request line writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// `host`, `host:port` or `[v6]:port`; no user information.
    pub authority: String,
    /// Starts with `/`; the fragment is dropped.
    pub path_with_query: String,
}

fn invalid(url: &str, why: &str) -> Error {
    Error::new(FailureReason::Config, format!("invalid URL `{url}`: {why}"))
}

/// `scheme:` prefix of an absolute reference, lowercased.
fn scheme_of(reference: &str) -> Option<String> {
    let (scheme, _) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

impl Url {
    /// Splits `url`; anything but an absolute `http(s)` URL without
    /// credentials is a [`FailureReason::Config`] error.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let scheme = scheme_of(url).ok_or_else(|| invalid(url, "expected http:// or https://"))?;
        let https = match scheme.as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(invalid(url, "only http and https are supported")),
        };
        let rest = url[scheme.len() + 1..]
            .strip_prefix("//")
            .ok_or_else(|| invalid(url, "expected `//` after the scheme"))?;
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(invalid(url, "no host"));
        }
        if authority.contains('@') {
            return Err(invalid(
                url,
                "credentials in URLs are not supported; send an Authorization header",
            ));
        }
        if url
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(invalid(url, "whitespace or control characters"));
        }
        let path_with_query = match path.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{path}"),
            Some(_) => path.to_owned(),
        };
        Ok(Self {
            https,
            authority: authority.to_owned(),
            path_with_query,
        })
    }

    /// The host, without brackets around an IPv6 literal.
    pub fn host(&self) -> &str {
        if let Some(v6) = self.authority.strip_prefix('[') {
            return v6.split_once(']').map_or(v6, |(host, _)| host);
        }
        self.authority
            .rsplit_once(':')
            .map_or(&*self.authority, |(host, _)| host)
    }

    /// The port: the URL's, else 443 for https and 80 for http.
    pub fn port(&self) -> u16 {
        let after_host = match self.authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
            None => self.authority.rsplit_once(':').map_or("", |(_, p)| p),
        };
        let after_host = after_host.strip_prefix(':').unwrap_or(after_host);
        after_host
            .parse()
            .unwrap_or(if self.https { 443 } else { 80 })
    }

    /// Resolves `location` (a redirect target) against this URL, RFC 3986
    /// style: absolute, scheme-relative, absolute-path, query-only and
    /// relative-path references.
    pub fn join(&self, location: &str) -> Result<Self, Error> {
        let location = location.trim();
        if scheme_of(location).is_some() {
            return Self::parse(location);
        }
        let scheme = if self.https { "https" } else { "http" };
        if location.starts_with("//") {
            return Self::parse(&format!("{scheme}:{location}"));
        }
        let location = location
            .split_once('#')
            .map_or(location, |(before, _)| before);
        let base_path = self
            .path_with_query
            .split_once('?')
            .map_or(&*self.path_with_query, |p| p.0);
        let joined = if location.is_empty() {
            self.path_with_query.clone()
        } else if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{base_path}{location}")
        } else {
            let directory = &base_path[..=base_path.rfind('/').unwrap_or(0)];
            format!("{directory}{location}")
        };
        let (path, query) = match joined.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (joined.as_str(), None),
        };
        let mut path_with_query = remove_dot_segments(path);
        if let Some(query) = query {
            path_with_query.push('?');
            path_with_query.push_str(query);
        }
        Self::parse(&format!("{scheme}://{}{path_with_query}", self.authority))
    }
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    output.push("");
                }
            }
            ".." => {
                output.pop();
                if last {
                    output.push("");
                }
            }
            segment => output.push(segment),
        }
    }
    format!("/{}", output.join("/"))
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.path_with_query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Url {
        Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn join(base: &str, location: &str) -> String {
        parse(base).join(location).unwrap().to_string()
    }

    #[test]
    fn splits_urls_into_wasi_http_parts() {
        let url = parse("https://example.com:8443/a/b?x=1#frag");
        assert!(url.https);
        assert_eq!(url.authority, "example.com:8443");
        assert_eq!(url.path_with_query, "/a/b?x=1");
        assert_eq!(parse("HTTP://h").path_with_query, "/");
        assert!(!parse("HTTP://h").https);
        assert_eq!(parse("http://h?q").path_with_query, "/?q");
        assert_eq!(parse("http://[::1]:80/").authority, "[::1]:80");
        assert_eq!(parse("http://[::1]:8080/").host(), "::1");
        assert_eq!(parse("http://[::1]:8080/").port(), 8080);
        assert_eq!(parse("https://h.test/").port(), 443);
        assert_eq!(parse("https://h.test/").host(), "h.test");
        assert_eq!(parse("http://h.test:81").host(), "h.test");
        assert_eq!(parse("http://h.test:81").port(), 81);
    }

    #[test]
    fn rejects_what_wasi_http_cannot_send() {
        for bad in [
            "example.com",
            "ftp://example.com/",
            "http:/example.com",
            "http:///path",
            "http://user:pw@example.com/",
            "http://example.com/a b",
            "",
        ] {
            let error = Url::parse(bad).expect_err(bad);
            assert_eq!(error.reason(), FailureReason::Config, "{bad}");
        }
    }

    #[test]
    fn resolves_redirect_locations() {
        let base = "http://a.test/x/y/z?q=1";
        assert_eq!(join(base, "https://b.test/p"), "https://b.test/p");
        assert_eq!(join(base, "//c.test/p"), "http://c.test/p");
        assert_eq!(join(base, "/root"), "http://a.test/root");
        assert_eq!(join(base, "?r=2"), "http://a.test/x/y/z?r=2");
        assert_eq!(join(base, "w"), "http://a.test/x/y/w");
        assert_eq!(join(base, "./w"), "http://a.test/x/y/w");
        assert_eq!(join(base, "../w?k"), "http://a.test/x/w?k");
        assert_eq!(join(base, "../../../../w"), "http://a.test/w");
        assert_eq!(join(base, ".."), "http://a.test/x/");
        assert_eq!(join(base, "#f"), "http://a.test/x/y/z?q=1");
        assert_eq!(join("http://a.test", "b"), "http://a.test/b");
    }
}
