//! The root certificates the HTTPS client trusts: Mozilla's, compiled into the binary, and those
//! of the PEM file `EXTRA_CA_CERTS` names, if it is set.
//!
//! Why compiled in: cold start. Left to its defaults, an HTTPS client loads the system's roots
//! (the bundle file and every file of `/etc/ssl/certs`, each PEM-parsed) when it is built: most
//! of the time from process start to the first Lambda Runtime API request. Mozilla's roots (the
//! `webpki-root-certs` crate, the list Linux distributions build their bundles from) are already
//! in memory as DER, so no certificate file is read and no PEM decoded at start. The set changes
//! when that crate is updated (`Cargo.lock`), not when the Lambda runtime image is.
//!
//! One client, built once, uses them for every request, the AWS SDK's included (see
//! [`super::aws_http`]).
//!
//! Every certificate is first checked here as rustls checks a trust anchor, so an unusable one is
//! named when `EXTRA_CA_CERTS` is read rather than failing the client's build.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rustls_pki_types::CertificateDer;

/// Mozilla's root CAs, as full DER certificates.
const MOZILLA_ROOTS: &[CertificateDer<'static>] = webpki_root_certs::TLS_SERVER_ROOT_CERTS;

/// Mozilla's roots that are usable trust anchors: all of them (a unit test says so), but checked
/// once per process anyway (well under a millisecond), so one the crate's next version adds that
/// rustls cannot use never stops the client from being built.
static USABLE_MOZILLA_ROOTS: LazyLock<Vec<&'static CertificateDer<'static>>> =
    LazyLock::new(|| {
        MOZILLA_ROOTS
            .iter()
            .filter(|cert| webpki::anchor_from_trusted_cert(cert).is_ok())
            .collect()
    });

/// The roots to trust: Mozilla's and any extra ones. [`Default`] is Mozilla's alone.
#[derive(Clone, Default)]
pub struct TrustRoots {
    /// From `EXTRA_CA_CERTS`; each one already a usable trust anchor.
    extra: Vec<CertificateDer<'static>>,
}

/// Why the extra certificates cannot be used. Never quotes the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("`{}` is not PEM: {reason}", path.display())]
    NotPem { path: PathBuf, reason: &'static str },
    #[error(
        "`{}` holds {blocks} PEM block(s) but no CERTIFICATE block",
        path.display()
    )]
    NoCertificate { path: PathBuf, blocks: usize },
    #[error(
        "certificate {number} of `{}` cannot be used as a trusted root: {reason}",
        path.display()
    )]
    Unusable {
        path: PathBuf,
        /// Counted from 1 among the file's CERTIFICATE blocks.
        number: usize,
        reason: webpki::Error,
    },
}

impl TrustRoots {
    /// Mozilla's roots, and the CERTIFICATE blocks of the PEM file at `extra` if there is one
    /// (read here, once). Every extra certificate must be usable as a trust anchor.
    pub fn load(extra: Option<&Path>) -> Result<Self, TrustError> {
        let Some(path) = extra else {
            return Ok(Self::default());
        };
        let bytes = std::fs::read(path).map_err(|source| TrustError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            extra: extra_certificates(path, &bytes)?,
        })
    }

    /// How many extra roots there are.
    pub fn extra_count(&self) -> usize {
        self.extra.len()
    }

    /// Every root: Mozilla's, then the extra ones.
    fn roots(&self) -> impl Iterator<Item = &CertificateDer<'static>> {
        USABLE_MOZILLA_ROOTS.iter().copied().chain(&self.extra)
    }

    /// The roots for reqwest's `tls_certs_only`, with which it verifies against these alone and
    /// never loads the platform's.
    pub fn reqwest_certificates(&self) -> Result<Vec<reqwest::Certificate>, reqwest::Error> {
        self.roots()
            .map(|cert| reqwest::Certificate::from_der(cert))
            .collect()
    }
}

impl fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustRoots")
            .field("mozilla", &MOZILLA_ROOTS.len())
            .field("extra", &self.extra.len())
            .finish()
    }
}

/// What is wrong with a PEM file, in words that quote none of it.
fn pem_error_reason(err: &pem::PemError) -> &'static str {
    match err {
        pem::PemError::MismatchedTags(..) => "a BEGIN line and its END line name different blocks",
        pem::PemError::InvalidData(_) => "a block's base64 is invalid",
        pem::PemError::NotUtf8(_) => "it is not text",
        pem::PemError::InvalidHeader(_) => "a block has an invalid header line",
        _ => "a block is malformed",
    }
}

/// The CERTIFICATE blocks of a PEM file, each checked as a trust anchor. Other blocks (a key, a
/// CRL) are skipped, but a file with no certificate at all is refused.
fn extra_certificates(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let not_pem = |reason| TrustError::NotPem {
        path: path.to_owned(),
        reason,
    };
    let blocks = pem::parse_many(bytes).map_err(|e| not_pem(pem_error_reason(&e)))?;
    // The parser drops a last block that never ends; count the BEGIN lines to notice it.
    let begins = bytes.windows(11).filter(|w| w == b"-----BEGIN ").count();
    if blocks.is_empty() && begins == 0 {
        return Err(not_pem("no `-----BEGIN` line"));
    }
    if begins > blocks.len() {
        return Err(not_pem("a block has no END line"));
    }
    let certs: Vec<CertificateDer<'static>> = blocks
        .iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| CertificateDer::from(block.contents().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(TrustError::NoCertificate {
            path: path.to_owned(),
            blocks: blocks.len(),
        });
    }
    for (index, cert) in certs.iter().enumerate() {
        webpki::anchor_from_trusted_cert(cert).map_err(|reason| TrustError::Unusable {
            path: path.to_owned(),
            number: index + 1,
            reason,
        })?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    /// A PEM file in a fresh directory under the system's temporary one, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &[u8]) -> TempFile {
            let dir = std::env::temp_dir().join(format!(
                "review-relay-trust-{name}-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("extra.pem");
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn load_bytes(name: &str, contents: &[u8]) -> Result<TrustRoots, TrustError> {
        TrustRoots::load(Some(&TempFile::new(name, contents).0))
    }

    fn pem_of(certs: &[&[u8]]) -> String {
        let blocks: Vec<pem::Pem> = certs
            .iter()
            .map(|der| pem::Pem::new("CERTIFICATE", *der))
            .collect();
        pem::encode_many(&blocks)
    }

    const TEST_CA: &str = include_str!("../../tests/fixtures/tls/ca.pem");

    #[test]
    fn the_compiled_in_roots_are_many_and_all_usable() {
        assert!(MOZILLA_ROOTS.len() > 100, "{}", MOZILLA_ROOTS.len());
        for (index, cert) in MOZILLA_ROOTS.iter().enumerate() {
            webpki::anchor_from_trusted_cert(cert)
                .unwrap_or_else(|e| panic!("Mozilla root {index}: {e}"));
        }
        assert_eq!(USABLE_MOZILLA_ROOTS.len(), MOZILLA_ROOTS.len());
        let roots = TrustRoots::load(None).unwrap();
        assert_eq!(roots.extra_count(), 0);
        assert_eq!(roots.roots().count(), MOZILLA_ROOTS.len());
        assert_eq!(
            roots.reqwest_certificates().unwrap().len(),
            MOZILLA_ROOTS.len()
        );
    }

    #[test]
    fn an_extra_file_adds_its_certificates_and_skips_other_blocks() {
        let ca = CertificateDer::from_pem_slice(TEST_CA.as_bytes()).unwrap();
        let server = include_str!("../../tests/fixtures/tls/server.pem");
        let key = include_str!("../../tests/fixtures/tls/server.key");
        let text = format!("# a comment line\n{TEST_CA}\n{key}\n{server}");
        let roots = load_bytes("extra", text.as_bytes()).unwrap();
        assert_eq!(roots.extra_count(), 2);
        assert_eq!(roots.roots().count(), MOZILLA_ROOTS.len() + 2);
        assert_eq!(roots.roots().nth(MOZILLA_ROOTS.len()), Some(&ca));
        assert_eq!(
            roots.reqwest_certificates().unwrap().len(),
            MOZILLA_ROOTS.len() + 2
        );
        let debug = format!("{roots:?}");
        assert!(debug.contains("extra: 2"), "{debug}");
    }

    #[test]
    fn each_bad_file_says_what_is_wrong() {
        let dir = TempFile::new("missing", b"");
        let missing = dir.0.with_file_name("nowhere.pem");
        let err = TrustRoots::load(Some(&missing)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot read `{}`", missing.display())),
            "{err}"
        );

        let garbage = b"MIIB this is not a certificate\n".as_slice();
        let key = include_bytes!("../../tests/fixtures/tls/server.key").as_slice();
        let truncated = &TEST_CA.as_bytes()[..TEST_CA.len() - 30];
        let bad_base64 = TEST_CA.replacen("MII", "M*I", 1);
        let mismatched = TEST_CA.replace("END CERTIFICATE", "END PRIVATE KEY");
        let not_der = pem_of(&[b"not a certificate"]);
        let second_bad = format!("{TEST_CA}\n{}", pem_of(&[&[0x30, 0x03, 0x02, 0x01, 0x01]]));
        let cases: [(&str, &[u8], &str); 8] = [
            ("empty", b"", "is not PEM: no `-----BEGIN` line"),
            ("garbage", garbage, "is not PEM: no `-----BEGIN` line"),
            (
                "truncated",
                truncated,
                "is not PEM: a block has no END line",
            ),
            (
                "base64",
                bad_base64.as_bytes(),
                "is not PEM: a block's base64 is invalid",
            ),
            (
                "mismatched",
                mismatched.as_bytes(),
                "is not PEM: a BEGIN line and its END line name different blocks",
            ),
            ("key", key, "holds 1 PEM block(s) but no CERTIFICATE block"),
            ("not-der", not_der.as_bytes(), "certificate 1 of `"),
            ("second", second_bad.as_bytes(), "certificate 2 of `"),
        ];
        for (name, contents, expected) in cases {
            let file = TempFile::new(name, contents);
            let path = &file.0;
            let err = TrustRoots::load(Some(path)).unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {err}");
            assert!(
                err.contains(&format!("`{}`", path.display())),
                "{name}: {err}"
            );
        }
        // The reason is webpki's.
        let reason =
            webpki::anchor_from_trusted_cert(&CertificateDer::from(&b"not a certificate"[..]))
                .unwrap_err();
        let err = load_bytes("reason", not_der.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(&format!("cannot be used as a trusted root: {reason}")),
            "{err}"
        );
    }
}
