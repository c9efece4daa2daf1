//! Where calls go: a target's address as `host:port` (or `http://host:port`), a tonic
//! endpoint to it for the control service, and the backend's three methods' paths on it.

use http::Uri;
use tonic::transport::Endpoint;

use crate::protocol::path;

/// A tonic endpoint to `addr` (`host:port`), for the control service.
pub fn endpoint(addr: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(uri_text(addr))?
        .tcp_nodelay(true)
        .connect_timeout(crate::transport::connection::CONNECT_TIMEOUT))
}

/// The `host:port` of a target given as `host:port` or `http://host:port[/]`. TLS is not
/// supported: any other scheme is refused.
pub fn authority(addr: &str) -> Result<String, String> {
    let rest = match addr.split_once("://") {
        None => addr,
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{scheme}:// is not supported (plaintext http:// only)"
            ));
        }
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("expected host:port, found {addr}"));
    }
    Ok(rest.to_string())
}

fn uri_text(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The three methods' paths on one server, and its authority.
#[derive(Debug)]
pub(super) struct Paths {
    pub(super) authority: Box<[u8]>,
    pub(super) call: Box<[u8]>,
    pub(super) mutate: Box<[u8]>,
    pub(super) stream: Box<[u8]>,
}

impl Paths {
    pub(super) fn new(authority: &str) -> Result<Self, String> {
        let base = uri_text(authority);
        let base = base.trim_end_matches('/');
        let uri = |method: &str| -> Result<Uri, String> {
            format!("{base}{}", path::of(path::BACKEND_SERVICE, method))
                .parse()
                .map_err(|e| format!("not an address: {authority}: {e}"))
        };
        let call = uri("Call")?;
        let path = |uri: &Uri| uri.path().as_bytes().into();
        Ok(Self {
            authority: call
                .authority()
                .map(|a| a.as_str().as_bytes().into())
                .ok_or_else(|| format!("not an address: {authority}"))?,
            call: path(&call),
            mutate: path(&uri("Mutate")?),
            stream: path(&uri("Stream")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_host_and_port_with_at_most_http() {
        assert_eq!(authority("127.0.0.1:50051").unwrap(), "127.0.0.1:50051");
        assert_eq!(authority("http://svc:80/").unwrap(), "svc:80");
        assert!(
            authority("https://svc:443")
                .unwrap_err()
                .contains("https://")
        );
        assert!(authority("http://svc:80/path").is_err());
        assert!(authority("").is_err());
    }
}
