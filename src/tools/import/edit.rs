//! The card as an editable TOML document (`toml_edit`): rates rewritten in place or inserted,
//! new Region tables; comments and layout are kept.

use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

use super::literal::{Kind, Literal, RateTable};
use crate::money::micros_to_usd_string;
use crate::pricing::date::CardDate;
use crate::pricing::entry::ModelPrice;

pub(super) struct CardDoc(DocumentMut);

impl CardDoc {
    pub(super) fn parse(text: &str) -> Result<CardDoc, String> {
        text.parse().map(CardDoc).map_err(|e| e.to_string())
    }

    /// The position in the file of the `[[model]]` table `e` was read from: the card allows one
    /// entry per id and `effective_from`.
    pub(super) fn model_index(&self, e: &ModelPrice) -> Option<usize> {
        let models = self.0.get("model")?.as_array_of_tables()?;
        models.iter().position(|t| {
            t.get("id").and_then(Item::as_str).map(str::trim) == Some(e.id.as_str())
                && effective_from(t) == e.effective_from
        })
    }

    /// Whether the card writes this rate out (rather than leaving it to a fallback).
    pub(super) fn states(&self, at: &Literal) -> bool {
        let Some(t) = self
            .0
            .get("model")
            .and_then(Item::as_array_of_tables)
            .and_then(|m| m.get(at.model))
        else {
            return false;
        };
        let table: Option<&dyn TableLike> = match &at.table {
            RateTable::Base => Some(t),
            RateTable::LongContext => t.get("long_context").and_then(Item::as_table_like),
            RateTable::Region(r) => t
                .get("regions")
                .and_then(Item::as_table_like)
                .and_then(|rs| rs.get(r))
                .and_then(Item::as_table_like),
        };
        table.is_some_and(|t| t.contains_key(at.kind.name()))
    }

    /// Writes `micros` at `at`: over the literal (keeping its comment), or as a new key at the
    /// end of its table.
    pub(super) fn set(&mut self, at: &Literal, micros: u64) {
        let Some(t) = self
            .0
            .get_mut("model")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|m| m.get_mut(at.model))
        else {
            return;
        };
        let table: Option<&mut dyn TableLike> = match &at.table {
            RateTable::Base => Some(t),
            RateTable::LongContext => t.get_mut("long_context").and_then(Item::as_table_like_mut),
            RateTable::Region(r) => t
                .get_mut("regions")
                .and_then(Item::as_table_like_mut)
                .and_then(|rs| rs.get_mut(r))
                .and_then(Item::as_table_like_mut),
        };
        let Some(table) = table else {
            return;
        };
        let mut value = usd_value(micros);
        match table.get_mut(at.kind.name()) {
            Some(Item::Value(old)) => {
                *value.decor_mut() = old.decor().clone();
                *old = value;
            }
            _ => {
                table.insert(at.kind.name(), Item::Value(value));
            }
        }
    }

    /// Adds a `[model.regions.R]` table with `rates` after the entry's last table.
    pub(super) fn add_region(&mut self, model: usize, region: &str, rates: &[(Kind, u64)]) {
        let Some(t) = self
            .0
            .get_mut("model")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|m| m.get_mut(model))
        else {
            return;
        };
        let regions = t.entry("regions").or_insert_with(|| {
            let mut implicit = Table::new();
            implicit.set_implicit(true);
            Item::Table(implicit)
        });
        match regions {
            Item::Table(regions) => {
                let mut table = Table::new();
                table.decor_mut().set_prefix("\n");
                for (kind, micros) in rates {
                    table.insert(kind.name(), Item::Value(usd_value(*micros)));
                }
                regions.insert(region, Item::Table(table));
            }
            // `regions = { … }` written inline: a sub-table would redefine it.
            Item::Value(Value::InlineTable(regions)) => {
                let mut table = InlineTable::new();
                for (kind, micros) in rates {
                    table.insert(kind.name(), usd_value(*micros));
                }
                regions.insert(region, Value::InlineTable(table));
            }
            _ => {}
        }
    }
}

impl std::fmt::Display for CardDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A rate as the card writes it (at least two decimals, `2.60`), which `toml_edit` keeps as the
/// literal's text.
fn usd_value(micros: u64) -> Value {
    let usd = micros_to_usd_string(micros);
    usd.parse()
        .unwrap_or_else(|_| Value::from(micros as f64 / 1e6))
}

fn effective_from(t: &Table) -> Option<CardDate> {
    let v = match t.get("effective_from")?.as_value()? {
        Value::String(s) => toml::Value::String(s.value().clone()),
        Value::Datetime(d) => toml::Value::Datetime(*d.value()),
        _ => return None,
    };
    CardDate::from_value(&v).ok()
}
