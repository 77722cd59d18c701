//! TLS client configuration for `mqtts://` (rustls with the ring provider, no process-wide
//! provider installation needed): the CA certificates of `ca_file` (PEM), or the system's
//! trust store when no `ca_file` is given.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

/// Builds the client configuration. The error says what is wrong with the CA setup.
pub(super) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| format!("ca_file {} is not valid PEM: {e}", path.display()))?;
                roots.add(cert).map_err(|e| {
                    format!(
                        "ca_file {} holds an unusable certificate: {e}",
                        path.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "ca_file {} holds no PEM certificate",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // Skip the odd unparsable system certificate rather than failing on it.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "no system CA certificates found for mqtts://; set ca_file to the broker's \
                     CA certificate (PEM)"
                        .into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
