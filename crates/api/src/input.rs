//! One reader for request bodies: each field is read by a rule (required or
//! not, what `null` means, blank, trimming, length, type), every problem is
//! collected, and the answer is DRF's field-error body (`{"field": ["msg"]}`,
//! lists of per-item error objects for lists of objects). DRF's messages are
//! defined here once.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::ApiError;

pub const REQUIRED: &str = "This field is required.";
pub const NOT_NULL: &str = "This field may not be null.";
pub const NOT_BLANK: &str = "This field may not be blank.";
pub const NOT_STRING: &str = "Not a valid string.";
pub const NOT_UUID: &str = "Must be a valid UUID.";
pub const NOT_INT: &str = "A valid integer is required.";
pub const NOT_DICT: &str = "Expected a dictionary of items.";
pub const NOT_LIST: &str = "Expected a list of items.";
pub const NOT_BOOL: &str = "Must be a valid boolean.";
pub const NOT_OBJECT: &str = "Invalid data. Expected a dictionary.";

pub fn too_long(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

pub fn not_a_choice(v: &str) -> String {
    format!("\"{v}\" is not a valid choice.")
}

/// A model UUID field's message (the original's `experiment` fields).
pub fn not_a_uuid(v: &str) -> String {
    format!("\u{201c}{v}\u{201d} is not a valid UUID.")
}

pub fn not_a_list_but(v: &Value) -> String {
    format!(
        "Expected a list of items but got type \"{}\".",
        type_name(v)
    )
}

/// The Python type name of a JSON value, as DRF's messages say it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Field errors in DRF's shape; the API answers them as a 400.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(pub Map<String, Value>);

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Fields(Value::Object(e.0))
    }
}

/// What `null` means for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Null {
    /// As if the field were absent.
    Absent,
    /// "This field may not be null."
    Refused,
}

/// How a text field is read.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    required: bool,
    null: Null,
    blank: bool,
    trim: bool,
    max: Option<usize>,
    numbers: bool,
}

impl Text {
    /// Required; `null` refused, blank refused, trimmed.
    pub const fn required() -> Self {
        Text {
            required: true,
            null: Null::Refused,
            blank: false,
            trim: true,
            max: None,
            numbers: false,
        }
    }

    /// Optional; `null` as absent, blank refused, trimmed.
    pub const fn optional() -> Self {
        Text {
            required: false,
            null: Null::Absent,
            blank: false,
            trim: true,
            max: None,
            numbers: false,
        }
    }

    pub const fn null(mut self, null: Null) -> Self {
        self.null = null;
        self
    }

    pub const fn allow_blank(mut self) -> Self {
        self.blank = true;
        self
    }

    /// Kept as sent (no trimming; length checks see the raw text).
    pub const fn raw(mut self) -> Self {
        self.trim = false;
        self
    }

    pub const fn max(mut self, chars: usize) -> Self {
        self.max = Some(chars);
        self
    }

    /// Numbers are accepted as their text (`12` reads as `"12"`).
    pub const fn numbers(mut self) -> Self {
        self.numbers = true;
        self
    }
}

/// Reads fields of one JSON object, collecting their errors.
pub struct Reader<'a> {
    body: &'a Map<String, Value>,
    errors: Map<String, Value>,
}

impl<'a> Reader<'a> {
    pub fn new(body: &'a Map<String, Value>) -> Self {
        Reader {
            body,
            errors: Map::new(),
        }
    }

    /// The raw value of a field (`None` when absent).
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.body.get(field)
    }

    /// Records `message` for `field` (the first error of a field wins).
    pub fn fail<T>(&mut self, field: &str, message: impl Into<String>) -> Option<T> {
        self.set(field, json!([message.into()]));
        None
    }

    /// Records an error body of another shape for `field` (nested errors).
    pub fn set(&mut self, field: &str, errors: Value) {
        self.errors.entry(field.to_string()).or_insert(errors);
    }

    /// Replaces whatever was recorded for `field`.
    pub fn replace(&mut self, field: &str, errors: Value) {
        self.errors.insert(field.to_string(), errors);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `Ok` when no field failed.
    pub fn finish(self) -> Result<(), FieldErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors(self.errors))
        }
    }

    /// The value to read, after the absent / `null` rules; `None` when there
    /// is nothing to read (an error is recorded when that is one).
    fn present(&mut self, field: &str, required: bool, null: Null) -> Option<&'a Value> {
        match self.body.get(field) {
            None if required => self.fail(field, REQUIRED),
            None => None,
            Some(Value::Null) if null == Null::Refused => self.fail(field, NOT_NULL),
            Some(Value::Null) if required => self.fail(field, REQUIRED),
            Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn text(&mut self, field: &str, rule: Text) -> Option<String> {
        let v = self.present(field, rule.required, rule.null)?;
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) if rule.numbers => n.to_string(),
            _ => return self.fail(field, NOT_STRING),
        };
        let s = if rule.trim { s.trim().to_string() } else { s };
        if !rule.blank && s.trim().is_empty() {
            return self.fail(field, NOT_BLANK);
        }
        if let Some(max) = rule.max
            && s.chars().count() > max
        {
            return self.fail(field, too_long(max));
        }
        Some(s)
    }

    /// A UUID given as a string ("Must be a valid UUID." otherwise).
    pub fn uuid(&mut self, field: &str, required: bool, null: Null) -> Option<Uuid> {
        let v = self.present(field, required, null)?;
        match v.as_str().and_then(|s| Uuid::parse_str(s.trim()).ok()) {
            Some(u) => Some(u),
            None => self.fail(field, NOT_UUID),
        }
    }

    /// A non-negative integer that fits an `i32`; `null` as absent.
    pub fn count(&mut self, field: &str) -> Option<i32> {
        let v = self.present(field, false, Null::Absent)?;
        match v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
        {
            Some(n) => Some(n),
            None => self.fail(field, NOT_INT),
        }
    }

    /// A boolean; absent or `null` reads as `false`.
    pub fn flag(&mut self, field: &str) -> bool {
        match self.present(field, false, Null::Absent) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => self.fail(field, NOT_BOOL).unwrap_or(false),
        }
    }

    /// An object; absent or `null` reads as `None`.
    pub fn object(&mut self, field: &str) -> Option<Map<String, Value>> {
        match self.present(field, false, Null::Absent)? {
            Value::Object(m) => Some(m.clone()),
            _ => self.fail(field, NOT_DICT),
        }
    }

    /// A list of integers; absent or `null` reads as empty.
    pub fn ints(&mut self, field: &str) -> Vec<i64> {
        match self.present(field, false, Null::Absent) {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                let ids: Vec<Option<i64>> = a.iter().map(Value::as_i64).collect();
                if ids.iter().any(Option::is_none) {
                    self.fail::<()>(field, NOT_INT);
                }
                ids.into_iter().flatten().collect()
            }
            Some(_) => {
                self.fail::<()>(field, NOT_LIST);
                Vec::new()
            }
        }
    }

    /// A list of objects, each read by `item` with a reader of its own; the
    /// errors are a list of per-item error objects (empty for good items).
    /// Items that are not objects are refused with `NOT_OBJECT`; when
    /// `lenient` (the original's session messages) they read as empty objects
    /// and a value that is not a list names its type.
    pub fn objects<T>(
        &mut self,
        field: &str,
        required: bool,
        lenient: bool,
        mut item: impl FnMut(&mut Reader<'_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let list = match self.present(field, required, Null::Absent)? {
            Value::Array(a) => a,
            other if lenient => {
                self.set(field, json!({"non_field_errors": [not_a_list_but(other)]}));
                return Some(Vec::new());
            }
            _ => return self.fail(field, NOT_LIST),
        };
        let empty = Map::new();
        let mut out = Vec::with_capacity(list.len());
        let mut item_errors = Vec::with_capacity(list.len());
        let mut any = false;
        for v in list {
            let obj = match v.as_object() {
                Some(o) => o,
                None if lenient => &empty,
                None => {
                    any = true;
                    item_errors.push(json!({"non_field_errors": [NOT_OBJECT]}));
                    continue;
                }
            };
            let mut r = Reader::new(obj);
            let value = item(&mut r);
            any |= r.has_errors();
            item_errors.push(Value::Object(r.errors));
            out.extend(value);
        }
        if any {
            self.set(field, Value::Array(item_errors));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read<T>(body: Value, f: impl FnOnce(&mut Reader<'_>) -> T) -> (T, Value) {
        let m = body.as_object().cloned().unwrap_or_default();
        let mut r = Reader::new(&m);
        let out = f(&mut r);
        let errors = match r.finish() {
            Ok(()) => json!({}),
            Err(e) => Value::Object(e.0),
        };
        (out, errors)
    }

    #[test]
    fn text_rules_and_their_messages() {
        let t = |body: Value, rule: Text| read(body, |r| r.text("f", rule));
        assert_eq!(t(json!({}), Text::required()).1, json!({"f": [REQUIRED]}));
        assert_eq!(
            t(json!({"f": null}), Text::required()).1,
            json!({"f": [NOT_NULL]})
        );
        assert_eq!(
            t(json!({"f": null}), Text::required().null(Null::Absent)).1,
            json!({"f": [REQUIRED]})
        );
        assert_eq!(t(json!({"f": null}), Text::optional()), (None, json!({})));
        assert_eq!(
            t(json!({"f": "  "}), Text::optional()).1,
            json!({"f": [NOT_BLANK]})
        );
        assert_eq!(
            t(json!({"f": 3}), Text::optional()).1,
            json!({"f": [NOT_STRING]})
        );
        assert_eq!(
            t(json!({"f": 3}), Text::optional().numbers()).0,
            Some("3".into())
        );
        assert_eq!(t(json!({"f": " a "}), Text::optional()).0, Some("a".into()));
        assert_eq!(
            t(json!({"f": " a "}), Text::optional().raw()).0,
            Some(" a ".into())
        );
        assert_eq!(
            t(json!({"f": ""}), Text::optional().allow_blank()).0,
            Some("".into())
        );
        assert_eq!(
            t(json!({"f": "abcd"}), Text::optional().max(3)).1,
            json!({"f": ["Ensure this field has no more than 3 characters."]})
        );
        // Length counts characters, not bytes.
        assert_eq!(t(json!({"f": "ééé"}), Text::optional().max(3)).1, json!({}));
    }

    #[test]
    fn other_types() {
        let (u, e) = read(json!({"a": "nope", "b": null}), |r| {
            (
                r.uuid("a", true, Null::Refused),
                r.uuid("b", true, Null::Refused),
                r.uuid("c", false, Null::Refused),
            )
        });
        assert_eq!(u, (None, None, None));
        assert_eq!(e, json!({"a": [NOT_UUID], "b": [NOT_NULL]}));
        let (n, e) = read(json!({"a": -1, "b": 7, "c": null, "d": "x"}), |r| {
            (r.count("a"), r.count("b"), r.count("c"), r.count("d"))
        });
        assert_eq!(n, (None, Some(7), None, None));
        assert_eq!(e, json!({"a": [NOT_INT], "d": [NOT_INT]}));
        let (f, e) = read(json!({"a": true, "b": "yes"}), |r| {
            (r.flag("a"), r.flag("b"), r.flag("c"))
        });
        assert_eq!(f, (true, false, false));
        assert_eq!(e, json!({"b": [NOT_BOOL]}));
        let (ids, e) = read(json!({"a": [1, "x"], "b": 3}), |r| {
            (r.ints("a"), r.ints("b"))
        });
        assert_eq!(ids, (vec![1], vec![]));
        assert_eq!(e, json!({"a": [NOT_INT], "b": [NOT_LIST]}));
        let (o, e) = read(json!({"a": [], "b": {"k": 1}}), |r| {
            (r.object("a"), r.object("b"))
        });
        assert!(o.0.is_none() && o.1.is_some());
        assert_eq!(e, json!({"a": [NOT_DICT]}));
    }

    #[test]
    fn lists_of_objects_report_per_item() {
        let item = |r: &mut Reader<'_>| r.text("name", Text::required());
        let (v, e) = read(json!({"l": [{"name": "a"}, {}, 3]}), |r| {
            r.objects("l", true, false, item)
        });
        assert_eq!(v, Some(vec!["a".to_string()]));
        assert_eq!(
            e,
            json!({"l": [{}, {"name": [REQUIRED]}, {"non_field_errors": [NOT_OBJECT]}]})
        );
        // Lenient lists read non-objects as empty objects, and name a wrong type.
        let (_, e) = read(json!({"l": [3]}), |r| r.objects("l", false, true, item));
        assert_eq!(e, json!({"l": [{"name": [REQUIRED]}]}));
        let (_, e) = read(json!({"l": 1.5}), |r| r.objects("l", false, true, item));
        assert_eq!(
            e,
            json!({"l": {"non_field_errors": ["Expected a list of items but got type \"float\"."]}})
        );
        let (_, e) = read(json!({"l": "x"}), |r| r.objects("l", false, false, item));
        assert_eq!(e, json!({"l": [NOT_LIST]}));
        let (_, e) = read(json!({}), |r| r.objects("l", true, false, item));
        assert_eq!(e, json!({"l": [REQUIRED]}));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_body_reads_to_values_or_errors(v in json_value(), keys in prop::collection::vec("[a-z_]{1,8}", 1..4)) {
            let mut body = Map::new();
            for k in &keys {
                body.insert(k.clone(), v.clone());
            }
            let mut r = Reader::new(&body);
            for k in &keys {
                r.text(k, Text::optional().max(5));
                r.uuid(k, true, Null::Refused);
                r.count(k);
                r.flag(k);
                r.object(k);
                r.ints(k);
                r.objects(k, false, true, |i| i.text("x", Text::required()));
            }
            // Every failure is reported under a field that was read.
            if let Err(e) = r.finish() {
                prop_assert!(!e.0.is_empty());
                prop_assert!(e.0.keys().all(|k| keys.contains(k)));
            }
        }
    }
}
