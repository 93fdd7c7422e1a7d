//! Target URLs: `http://host[:port][/path][?query]`.

use crate::error::BenchError;

/// One parsed target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given, for reports.
    pub url: String,
    /// Host as written (no brackets for IPv6), used to connect.
    pub host: String,
    pub port: u16,
    /// Value for the `Host` header (`host` or `host:port`).
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, BenchError> {
        let bad = |why: &str| BenchError::Url {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(bad("https is not supported (plain HTTP/1.1 only)"));
        } else {
            return Err(bad("must start with http://"));
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("invalid port"))?;
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        let path = path.split('#').next().unwrap_or("/").to_string();
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("path contains spaces or control characters"));
        }
        Ok(Self {
            url: url.to_string(),
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path,
        })
    }

    /// `host:port` key used to group URLs that can share a connection.
    pub fn endpoint(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }
}

fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        return match &rest[end + 1..] {
            "" => Some((host, 80)),
            port => Some((host, port.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, 80)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let t = Target::parse("http://localhost:8080/todos?limit=10").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 8080));
        assert_eq!(t.authority, "localhost:8080");
        assert_eq!(t.path, "/todos?limit=10");
        let t = Target::parse("http://example.com").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = Target::parse("http://[::1]:9000?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 9000, "/?x=1")
        );
    }

    #[test]
    fn rejects_bad() {
        assert!(Target::parse("https://x/").is_err());
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http://x:notaport/").is_err());
        assert!(Target::parse("http:///path").is_err());
        assert!(Target::parse("http://x/a b").is_err());
    }
}
