//! The Debian archive this machine reaches, read from its own apt sources:
//! the kernels of the matrix and the roots of other Debian releases come
//! from it.

use std::{fs, path::Path};

use anyhow::Context;

/// Where the machine's apt configuration lists its sources.
const APT_SOURCES: [&str; 2] = ["/etc/apt/sources.list", "/etc/apt/sources.list.d"];

/// The Debian archive the machine's own apt uses (its first source whose
/// address ends in `/debian`): the one this machine can reach.
pub fn mirror() -> anyhow::Result<String> {
    let mut files = vec![std::path::PathBuf::from(APT_SOURCES[0])];
    if let Ok(entries) = fs::read_dir(APT_SOURCES[1]) {
        let mut listed: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        listed.sort();
        files.extend(listed);
    }
    files
        .iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "list" || ext == "sources")
                || path.as_path() == Path::new(APT_SOURCES[0])
        })
        .filter_map(|path| fs::read_to_string(path).ok())
        .find_map(|text| archive_uri(&text))
        .with_context(|| format!("no Debian archive in {}", APT_SOURCES.join(" or ")))
}

/// The first address ending in `/debian` in a sources file, one-line
/// (`deb [options] URI suite…`) or deb822 (`URIs: URI`).
fn archive_uri(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| {
            let words = line.strip_prefix("URIs:").unwrap_or(line);
            words.split_whitespace()
        })
        .find(|word| word.contains("://") && word.trim_end_matches('/').ends_with("/debian"))
        .map(|uri| uri.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::archive_uri;

    #[test]
    fn finds_the_archive_in_both_source_formats() {
        let deb822 = "Types: deb\n# http://example.org/old/debian\nURIs: http://mirror.test/debian\n\
                      Suites: bookworm\n\nTypes: deb\nURIs: http://mirror.test/debian-security\n";
        assert_eq!(
            archive_uri(deb822).as_deref(),
            Some("http://mirror.test/debian")
        );
        let one_line = "deb http://mirror.test/debian-security bookworm-security main\n\
                        deb [arch=amd64] http://mirror.test/debian/ bookworm main\n";
        assert_eq!(
            archive_uri(one_line).as_deref(),
            Some("http://mirror.test/debian")
        );
        assert_eq!(
            archive_uri("deb https://nodes.test/node_20.x nodistro main"),
            None
        );
    }
}
