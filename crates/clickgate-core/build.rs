//! The report page goes into the Worker as written, less what only its readers need: each line's
//! indentation, and the lines that are only a comment (`// …` in the script, `/* … */` in the
//! style). The Worker's gzipped size is budgeted (`scripts/versions.sh`), and the page is in it.
//! The page holds no multi-line string or `<pre>` text, so neither changes what it does.

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=src/admin_page.html");
    let page = fs::read_to_string("src/admin_page.html").expect("src/admin_page.html");
    let mut out = String::with_capacity(page.len());
    for line in page.lines().map(str::trim_start) {
        let comment = line.starts_with("//") || (line.starts_with("/*") && line.ends_with("*/"));
        if !comment {
            out.push_str(line);
            out.push('\n');
        }
    }
    let dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    fs::write(Path::new(&dir).join("admin_page.html"), out).expect("OUT_DIR is writable");
}
