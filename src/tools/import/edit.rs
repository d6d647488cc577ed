//! The edits applied to the card text: rates rewritten or inserted, new Region tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::source::SourceRates;
use super::target::{Edit, EditKey, Kind};
use crate::money::micros_to_usd_string;

pub(super) fn apply_edits(
    text: &str,
    edits: &BTreeMap<EditKey, Edit>,
    region_tables: &BTreeMap<(usize, String), String>,
) -> String {
    // (start, end, order, replacement): applied back to front so earlier offsets stay valid;
    // several inserts at one offset end up in `order`.
    let mut patches: Vec<(usize, usize, usize, String)> = Vec::new();
    for (key, edit) in edits {
        match key {
            EditKey::Replace { start, end } => {
                patches.push((*start, *end, 0, micros_to_usd_string(edit.to)));
            }
            EditKey::Insert { at, kind } => {
                let line = format!("{} = {}\n", kind.name(), micros_to_usd_string(edit.to));
                patches.push((*at, *at, *kind as usize, line));
            }
        }
    }
    for (i, ((at, _), table)) in region_tables.iter().enumerate() {
        patches.push((*at, *at, 100 + i, table.clone()));
    }
    patches.sort_by_key(|p| (p.0, p.2));
    let mut out = text.to_owned();
    for (start, end, _, replacement) in patches.into_iter().rev() {
        let ok = start <= end
            && end <= out.len()
            && out.is_char_boundary(start)
            && out.is_char_boundary(end);
        if !ok {
            continue;
        }
        let mut replacement = replacement;
        if start == end && start > 0 && !out[..start].ends_with('\n') {
            replacement.insert(0, '\n');
        }
        out.replace_range(start..end, &replacement);
    }
    out
}

/// A `[model.regions.R]` table with the source's rates (cache rates only for caching models).
pub(super) fn region_table(region: &str, rates: &SourceRates, caching: bool) -> String {
    let mut t = format!("\n[model.regions.{region}]\n");
    for kind in Kind::ALL {
        if kind.is_cache() && !caching {
            continue;
        }
        if let Some(v) = rates.get(kind) {
            let _ = writeln!(t, "{} = {}", kind.name(), micros_to_usd_string(v));
        }
    }
    t
}
