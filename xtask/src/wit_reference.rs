//! `docs/wit-reference.md`, generated from `wit/plugin.wit` so that it
//! cannot drift: `cargo xtask wit-reference` writes it, and a test fails
//! when the committed file differs from what the contract gives.
//!
//! The contract's own `///` comments are the prose; every interface and
//! world gets a section, every item in an interface a heading with its
//! documentation and its exact definition (field comments kept inside).

use std::fmt::Write;

use anyhow::{Context, bail};

use crate::workspace_root;

const HEADER: &str = "<!-- Generated from wit/plugin.wit by `cargo xtask wit-reference`; \
                      do not edit (a test compares it with the contract). -->\n";

/// Writes `docs/wit-reference.md`.
pub fn write() -> anyhow::Result<()> {
    let root = workspace_root();
    let wit = std::fs::read_to_string(root.join("wit/plugin.wit"))?;
    let path = root.join("docs/wit-reference.md");
    std::fs::write(&path, render(&wit)?).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `///` comment lines, without the marker, as one paragraph block.
fn prose(docs: &[&str]) -> String {
    let mut out = String::new();
    for line in docs {
        out.push_str(
            line.trim_start()
                .trim_start_matches("///")
                .strip_prefix(' ')
                .unwrap_or(""),
        );
        out.push('\n');
    }
    out
}

/// The name a top-level or member declaration introduces, and its kind.
fn declared(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    for kind in [
        "interface",
        "world",
        "record",
        "enum",
        "variant",
        "resource",
        "flags",
        "type",
    ] {
        if let Some(rest) = line.strip_prefix(kind).and_then(|r| r.strip_prefix(' ')) {
            let name = rest.split([' ', '{', '=', ';']).next().unwrap_or(rest);
            return Some((kind, name));
        }
    }
    let (name, rest) = line.split_once(':')?;
    rest.trim_start()
        .starts_with("func")
        .then_some(("func", name.trim()))
}

pub fn render(wit: &str) -> anyhow::Result<String> {
    let lines: Vec<&str> = wit.lines().collect();
    let mut out = String::from(HEADER);
    let mut docs: Vec<&str> = Vec::new();
    let mut i = 0;
    let mut package = None;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("///") {
            docs.push(line);
            i += 1;
            continue;
        }
        if let Some(name) = line.strip_prefix("package ") {
            package = Some(name.trim_end_matches(';').to_string());
            writeln!(
                out,
                "# WIT reference: `{}`\n",
                package.as_deref().unwrap_or_default()
            )?;
            writeln!(out, "{}", prose(&docs))?;
            docs.clear();
            i += 1;
            continue;
        }
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        let Some((kind, name)) = declared(line).filter(|(k, _)| *k == "interface" || *k == "world")
        else {
            bail!(
                "wit/plugin.wit:{}: unexpected top-level line `{line}`",
                i + 1
            );
        };
        writeln!(out, "## {kind} `{name}`\n")?;
        if !docs.is_empty() {
            writeln!(out, "{}", prose(&docs))?;
            docs.clear();
        }
        i += 1;
        if kind == "world" {
            // A world is short: its body as written.
            let mut body = String::new();
            while i < lines.len() && lines[i] != "}" {
                body.push_str(lines[i].strip_prefix("    ").unwrap_or(lines[i]));
                body.push('\n');
                i += 1;
            }
            writeln!(out, "```wit\nworld {name} {{\n{}}}\n```\n", indent(&body))?;
            i += 1;
            continue;
        }
        // An interface: one heading per member.
        let mut member_docs: Vec<&str> = Vec::new();
        while i < lines.len() && lines[i] != "}" {
            let member = lines[i];
            if member.trim_start().starts_with("///") {
                member_docs.push(member);
                i += 1;
                continue;
            }
            if member.trim().is_empty() {
                i += 1;
                continue;
            }
            if member.trim_start().starts_with("use ") {
                i += 1;
                member_docs.clear();
                continue;
            }
            let Some((member_kind, member_name)) = declared(member) else {
                bail!(
                    "wit/plugin.wit:{}: unexpected line in interface {name}: `{member}`",
                    i + 1
                );
            };
            let mut definition = String::new();
            let opens_block = member.trim_end().ends_with('{');
            definition.push_str(member.trim_start());
            definition.push('\n');
            i += 1;
            if opens_block {
                while i < lines.len() && lines[i] != "    }" {
                    definition.push_str(lines[i].strip_prefix("    ").unwrap_or(lines[i]));
                    definition.push('\n');
                    i += 1;
                }
                definition.push_str("}\n");
                i += 1;
            }
            writeln!(out, "### {member_kind} `{name}.{member_name}`\n")?;
            if !member_docs.is_empty() {
                writeln!(out, "{}", prose(&member_docs))?;
                member_docs.clear();
            }
            writeln!(out, "```wit\n{definition}```\n")?;
        }
        i += 1;
    }
    if package.is_none() {
        bail!("wit/plugin.wit has no package line");
    }
    Ok(out.trim_end().to_string() + "\n")
}

fn indent(body: &str) -> String {
    body.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}\n")
            }
        })
        .map(|l| if l.is_empty() { "\n".to_string() } else { l })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_reference_matches_the_contract() {
        let root = crate::workspace_root();
        let wit = std::fs::read_to_string(root.join("wit/plugin.wit")).unwrap();
        let generated = super::render(&wit).unwrap();
        let committed =
            std::fs::read_to_string(root.join("docs/wit-reference.md")).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/wit-reference.md is not what wit/plugin.wit gives: run `cargo xtask wit-reference`"
        );
        // Every item of the contract has its heading.
        for needle in [
            "### record `types.sample`",
            "### func `host.kv-set`",
            "### resource `detection.detector`",
            "## world `notifier`",
        ] {
            assert!(generated.contains(needle), "{needle} missing");
        }
    }
}
