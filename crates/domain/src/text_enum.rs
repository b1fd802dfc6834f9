//! Closed sets of values stored as text: one enum each, converted to and from
//! its stored text in exactly one place (the table given to the macro).

/// Declares an enum whose variants are stored (and serialised) as the given
/// strings: `as_str`, `FromStr`, `Display`, serde and a sea-orm `Value`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $vis:vis enum $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value for its stored text, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::text_enum::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| crate::text_enum::UnknownValue {
                    kind: stringify!($name),
                    value: s.to_string(),
                    known: &[$($text),+],
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for sea_orm::Value {
            fn from(v: $name) -> Self {
                v.as_str().into()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use text_enum;

/// A stored value outside its enum (a row written by a newer version, or by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (one of: {})", known.join(", "))]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub known: &'static [&'static str],
}

/// Reads a stored value, mapping a value outside the enum to an internal error.
pub(crate) fn stored<T: std::str::FromStr<Err = UnknownValue>>(text: &str) -> crate::Result<T> {
    text.parse()
        .map_err(|e: UnknownValue| crate::Error::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    text_enum!(
        enum Colour {
            Red = "red",
            Dark = "dark-blue",
        }
    );

    #[test]
    fn round_trips_and_refuses_strangers() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>().unwrap(), *c);
            let j = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<Colour>(&j).unwrap(), *c);
        }
        assert_eq!(Colour::Dark.to_string(), "dark-blue");
        let e = "blue".parse::<Colour>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown Colour \"blue\" (one of: red, dark-blue)"
        );
        assert!(serde_json::from_str::<Colour>("\"blue\"").is_err());
    }
}
