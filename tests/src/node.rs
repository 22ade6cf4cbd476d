//! Node.js binaries and script positions for the JavaScript-frame tests.

use std::path::PathBuf;

/// The node binary of `major`: the machine's for 20, else the one xtask
/// cached. None (the test says it skipped) outside `cargo xtask test`;
/// under CI=true that is a failure.
pub fn node(major: &str) -> Option<PathBuf> {
    if major == "20" {
        return Some(PathBuf::from("node"));
    }
    crate::given(&format!("TRACER_NODE_{major}"), &format!("Node {major}"))
}

/// The line and column (1-based) in `script` of the first line holding
/// `needle`, and of `within` on it (column 1 if empty): where a planted
/// call is (its `// plant: NAME` marker, the callee's name on it, where V8
/// puts a call's position) or where a function starts.
pub fn position_of(script: &str, needle: &str, within: &str) -> (u64, u64) {
    let source = std::fs::read_to_string(script).expect("read the script");
    let (index, line) = source
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in {script}"));
    let column = line
        .find(within)
        .unwrap_or_else(|| panic!("no {within:?} on {line:?}"));
    (index as u64 + 1, column as u64 + 1)
}
