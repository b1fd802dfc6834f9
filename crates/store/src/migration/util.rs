//! Column, key and index shorthands shared by the migrations written with
//! string identifiers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub(super) fn ts(c: &'static str) -> ColumnDef {
    timestamp_with_time_zone(c)
}

pub(super) fn ts_null(c: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(c)
}

/// A foreign key from `table.col` to `to.id`.
pub(super) fn fk(
    table: &'static str,
    col: &'static str,
    to: &'static str,
    action: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(to, "id")
        .on_delete(action)
        .to_owned()
}

pub(super) fn index(
    name: &'static str,
    table: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(*c);
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}
