//! The shape of the crate, checked from its source text: the layers of shared/DESIGN.md
//! (a module imports only from layers below it, so no cycles between modules), no cycle between
//! the files of one module, no SQL outside `store/`, the suppression tables written from one
//! file, `main.rs` a thin shell, and no function longer than a screen.
//!
//! It reads `src/` as text (comments and string contents stripped), so it needs no build of
//! its own and names the file and line of each breach.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom to top: the one place the order is written. A module may import from
/// the layers below its own, never from its own layer or above.
const LAYERS: &[&[&str]] = &[
    &["model"],
    &["config", "store"],
    &["suppress", "dns"],
    &["audience", "compose"],
    &["compliance"],
    &["abtest", "inbound"],
    &["send"],
    &["app"],
    &["web"],
    // The binary: main.rs and its own modules under src/cli/ (argument definitions, printing).
    &["main", "cli", "terminal"],
];

const MAX_MAIN_LINES: usize = 400;
const MAX_FUNCTION_LINES: usize = 80;

/// SQL statements as they begin in a string literal.
const SQL_STARTS: &[&str] = &[
    "SELECT ",
    "INSERT INTO",
    "UPDATE ",
    "DELETE FROM",
    "CREATE TABLE",
    "ALTER TABLE",
    "WITH ",
    "PRAGMA ",
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

struct SourceFile {
    /// Path relative to `src/`, with forward slashes.
    name: String,
    /// The top-level module the file belongs to (`main` for main.rs).
    module: String,
    raw: String,
    /// The text with comments removed and string/char literal contents blanked, line breaks
    /// kept, so that line numbers still match.
    code: String,
    /// The contents of the string literals, with the line each starts on.
    strings: Vec<(usize, String)>,
}

fn source_files() -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    collect_rs(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&src)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let module = match name.split_once('/') {
                Some((dir, _)) => dir.to_string(),
                None => name.trim_end_matches(".rs").to_string(),
            };
            let raw = std::fs::read_to_string(&path).expect("readable source file");
            let (code, strings) = strip(&raw);
            SourceFile {
                name,
                module,
                raw,
                code,
                strings,
            }
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Removes comments and the contents of string and char literals (keeping line breaks).
fn strip(text: &str) -> (String, Vec<(usize, String)>) {
    let chars: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let keep_newlines = |s: &[char], code: &mut String| {
        for c in s {
            if *c == '\n' {
                code.push('\n');
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let start = i;
            i += 2;
            let mut depth = 1;
            while i < chars.len() && depth > 0 {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 1;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 1;
                }
                i += 1;
            }
            keep_newlines(&chars[start..i.min(chars.len())], &mut code);
            line += chars[start..i.min(chars.len())]
                .iter()
                .filter(|c| **c == '\n')
                .count();
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !is_ident(prev(&chars, i)) {
            // Raw string: r"…", r#"…"#, r##"…"##.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                code.push(c);
                i += 1;
                continue;
            }
            let body_start = j + 1;
            let mut k = body_start;
            loop {
                if k >= chars.len() {
                    break;
                }
                if chars[k] == '"' && (0..hashes).all(|h| chars.get(k + 1 + h) == Some(&'#')) {
                    break;
                }
                k += 1;
            }
            let body: String = chars[body_start..k.min(chars.len())].iter().collect();
            strings.push((line, body.clone()));
            code.push_str("\"\"");
            keep_newlines(&chars[body_start..k.min(chars.len())], &mut code);
            line += body.matches('\n').count();
            i = k + 1 + hashes;
        } else if c == '"' {
            let mut k = i + 1;
            while k < chars.len() && chars[k] != '"' {
                if chars[k] == '\\' {
                    k += 1;
                }
                k += 1;
            }
            let body: String = chars[i + 1..k.min(chars.len())].iter().collect();
            strings.push((line, body.clone()));
            code.push_str("\"\"");
            keep_newlines(&chars[i + 1..k.min(chars.len())], &mut code);
            line += body.matches('\n').count();
            i = k + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let close = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|k| chars[*k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(k) => {
                    code.push_str("' '");
                    i = k + 1;
                }
                None => {
                    code.push(c);
                    i += 1;
                }
            }
        } else {
            if c == '\n' {
                line += 1;
            }
            code.push(c);
            i += 1;
        }
    }
    (code, strings)
}

fn prev(chars: &[char], i: usize) -> char {
    if i == 0 { ' ' } else { chars[i - 1] }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte].matches('\n').count() + 1
}

/// main.rs, src/cli/ and src/terminal.rs form the binary, which reaches the library as `fairsend::`.
fn is_binary(file: &SourceFile) -> bool {
    matches!(file.module.as_str(), "main" | "cli" | "terminal")
}

/// Every top-level module a file names through `crate::` (`fairsend::` in main.rs), with the
/// line: plain paths and the first names inside `use crate::{…}` groups.
fn imported_modules(file: &SourceFile) -> Vec<(String, usize)> {
    let root = if is_binary(file) {
        "fairsend::"
    } else {
        "crate::"
    };
    let code = &file.code;
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(root) {
        let start = from + at;
        from = start + root.len();
        if start > 0 && is_ident(code[..start].chars().next_back().unwrap_or(' ')) {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut first_names = Vec::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 && ch == ',' {
                    first_names.push(std::mem::take(&mut item));
                } else if depth == 1 {
                    item.push(ch);
                }
            }
            first_names.push(item);
            for name in first_names {
                let head: String = name.trim().chars().take_while(|c| is_ident(*c)).collect();
                if !head.is_empty() {
                    found.push((head, line_of(code, start)));
                }
            }
        } else {
            let head: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            found.push((head, line_of(code, start)));
        }
    }
    found
}

#[test]
fn modules_import_only_from_lower_layers() {
    let mut breaches = Vec::new();
    let mut unknown = BTreeSet::new();
    for file in source_files() {
        if file.name == "lib.rs" {
            continue;
        }
        let Some(own) = layer_of(&file.module) else {
            unknown.insert(file.module.clone());
            continue;
        };
        for (module, line) in imported_modules(&file) {
            // The crate root's clocks (lib.rs) are below every layer.
            if module == file.module
                || module == "now_millis"
                || module == "schedule_now"
                || module == "self"
            {
                continue;
            }
            if is_binary(&file) && module == "cli" {
                continue;
            }
            match layer_of(&module) {
                None => {
                    unknown.insert(module);
                }
                Some(theirs) if theirs >= own => breaches.push(format!(
                    "src/{}:{line}: {} (layer {}) imports {module} (layer {})",
                    file.name,
                    file.module,
                    own + 1,
                    theirs + 1
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from LAYERS in tests/architecture.rs: {unknown:?}"
    );
    assert!(
        breaches.is_empty(),
        "imports that run against the layers of shared/DESIGN.md:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn model_imports_nothing_of_the_crate() {
    for file in source_files().iter().filter(|f| f.module == "model") {
        let others: Vec<_> = imported_modules(file)
            .into_iter()
            .filter(|(m, _)| m != "model")
            .collect();
        assert!(others.is_empty(), "src/{} imports {others:?}", file.name);
    }
}

/// Within one module, the sibling files (not the module's own mod.rs) form no cycle.
#[test]
fn no_cycle_between_the_files_of_a_module() {
    let files = source_files();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some((dir, leaf)) = file.name.rsplit_once('/') else {
            continue;
        };
        if leaf == "mod.rs" {
            continue;
        }
        let siblings: Vec<String> = files
            .iter()
            .filter_map(|f| {
                let (d, l) = f.name.rsplit_once('/')?;
                (d == dir && l != "mod.rs" && l != leaf).then(|| l.trim_end_matches(".rs").into())
            })
            .collect();
        let module_path = format!("crate::{}::", dir.replace('/', "::"));
        for sibling in siblings {
            let by_super = format!("super::{sibling}::");
            let by_crate = format!("{module_path}{sibling}::");
            let by_super_group = format!("super::{{{sibling}");
            if file.code.contains(&by_super)
                || file.code.contains(&by_crate)
                || file.code.contains(&by_super_group)
            {
                graph
                    .entry(file.name.clone())
                    .or_default()
                    .insert(format!("{dir}/{sibling}.rs"));
            }
        }
    }
    for (from, tos) in &graph {
        for to in tos {
            if graph.get(to).is_some_and(|back| back.contains(from)) {
                panic!("src/{from} and src/{to} import each other");
            }
        }
    }
}

#[test]
fn sql_only_in_store() {
    let mut breaches = Vec::new();
    for file in source_files().iter().filter(|f| f.module != "store") {
        for (line, text) in &file.strings {
            let t = text.trim_start();
            // An IMAP `SELECT mailbox` is not SQL: a SQL SELECT reads FROM something.
            let imap_select = t.starts_with("SELECT ") && !t.contains(" FROM ");
            if SQL_STARTS.iter().any(|s| t.starts_with(s)) && !imap_select {
                breaches.push(format!(
                    "src/{}:{line}: {}",
                    file.name,
                    t.lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "SQL outside src/store/:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn suppression_tables_written_by_one_file() {
    let mut writers = BTreeSet::new();
    for file in source_files() {
        for (_, text) in &file.strings {
            let statement = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for table in ["suppressions", "suppression_reasons"] {
                let writes = [
                    format!("INSERT INTO {table} "),
                    format!("INSERT INTO {table}("),
                    format!("UPDATE {table} "),
                    format!("DELETE FROM {table} "),
                    format!("DELETE FROM {table}"),
                ];
                if writes.iter().any(|w| {
                    statement.find(w.as_str()).is_some_and(|at| {
                        let after = &statement[at + w.len()..];
                        !after.starts_with(|c: char| is_ident(c))
                            || w.ends_with(' ')
                            || w.ends_with('(')
                    })
                }) {
                    writers.insert(file.name.clone());
                }
            }
        }
    }
    assert_eq!(
        writers,
        BTreeSet::from(["store/suppressions.rs".to_string()]),
        "the suppression tables must be written by src/store/suppressions.rs alone"
    );
}

#[test]
fn main_is_a_thin_shell() {
    let main = source_files()
        .into_iter()
        .find(|f| f.name == "main.rs")
        .expect("src/main.rs");
    let lines = main.raw.lines().count();
    assert!(
        lines < MAX_MAIN_LINES,
        "src/main.rs has {lines} lines; it parses arguments, calls app/ and prints (< {MAX_MAIN_LINES})"
    );
}

#[test]
fn no_function_longer_than_a_screen() {
    let mut long = Vec::new();
    for file in source_files() {
        for (name, line, length) in functions(&file.code) {
            if length > MAX_FUNCTION_LINES {
                long.push(format!(
                    "src/{}:{line}: fn {name} is {length} lines",
                    file.name
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// (name, first line, length in lines) of every `fn` with a body.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("fn ") {
        let start = from + at;
        from = start + 3;
        let before = code[..start].chars().next_back().unwrap_or(' ');
        if is_ident(before) {
            continue;
        }
        let name: String = code[from..].chars().take_while(|c| is_ident(*c)).collect();
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` before any `;` (a declaration without a body).
        let mut k = from;
        let mut angle = 0i32;
        while k < bytes.len() {
            match bytes[k] {
                b'<' => angle += 1,
                b'>' if k > 0 && bytes[k - 1] != b'-' => angle -= 1,
                b'{' | b';' if angle <= 0 => break,
                _ => {}
            }
            k += 1;
        }
        if k >= bytes.len() || bytes[k] == b';' {
            continue;
        }
        let mut depth = 0;
        let mut end = k;
        while end < bytes.len() {
            match bytes[end] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            end += 1;
        }
        let first = line_of(code, start);
        let last = line_of(code, end.min(code.len()));
        found.push((name, first, last - first + 1));
    }
    found
}
