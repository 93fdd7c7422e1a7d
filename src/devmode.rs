//! What a zero-setup node tells its user at start-up: the secrets it generated (once, when
//! it generated them) and a ready-to-paste request for each service.

use std::net::SocketAddr;
use std::time::Duration;

use floodgate_core::config::dev_secrets::DevSecrets;
use floodgate_core::Config;

/// Lifetime of the token printed in the banner.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Prints the banner on stderr (plain text, whatever the log format: it is meant to be
/// copied) when secrets were generated; otherwise one log line saying where they are.
pub fn announce(cfg: &Config, addr: SocketAddr, dev: &DevSecrets) {
    if dev.generated.is_empty() {
        tracing::info!(file = %dev.path.display(), "zero-setup mode: secrets read from the file (`floodgate token --sub me` mints a token)");
        return;
    }
    eprint!("{}", banner(cfg, addr, dev));
}

/// The base URL a local client reaches `addr` at.
fn base_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

pub fn banner(cfg: &Config, addr: SocketAddr, dev: &DevSecrets) -> String {
    let url = base_url(addr);
    let file = dev.path.display();
    let mut out = format!(
        "\nfloodgate: zero-setup mode (every backend embedded, no secrets configured).\n\
         Generated {} into {file} (mode 0600); later starts and `floodgate token` reuse it.\n\
         Set JWT_SECRET and ABACUS_API_KEYS yourself before sharing Redis, Kafka or PostgreSQL.\n\
         Try each service:\n",
        dev.generated.join(" and "),
    );
    for l in curl_lines(cfg, &url) {
        out.push_str("  ");
        out.push_str(&l);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// One request per service, with this node's secrets filled in.
pub fn curl_lines(cfg: &Config, url: &str) -> Vec<String> {
    let mut lines = vec![
        format!("curl -s {url}/"),
        format!("curl -s -X POST {url}/queue"),
        format!("curl -s -X POST '{url}/generate?n=25'"),
    ];
    if let Some(secret) = &cfg.settings::<floodgate_todos::Settings>().jwt_secret {
        if let Ok(token) = floodgate_todos::mint_token(secret.expose(), "me", TOKEN_TTL) {
            lines.push(format!(
                "curl -s -X POST {url}/todos -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"title\":\"try floodgate\"}}'"
            ));
        }
    }
    lines.push(format!("curl -s '{url}/todos?limit=10'"));
    if let Some(key) = cfg
        .settings::<floodgate_abacus::Settings>()
        .api_keys
        .first()
    {
        let key = key.expose();
        lines.push(format!(
            "curl -s -X POST {url}/abacus/number -H 'X-API-Key: {key}' -H \"Idempotency-Key: $(date +%s%N)\" -H 'Content-Type: application/json' -d '{{\"number\":5}}'"
        ));
        lines.push(format!("curl -s {url}/abacus/sum -H 'X-API-Key: {key}'"));
    }
    lines
}
