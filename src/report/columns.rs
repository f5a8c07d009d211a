//! The columns of `results.csv`, taken from the row type itself: serde hands every struct's field
//! names, in order, to the deserializer it reads with, so a deserializer that only listens for
//! them gives the header. A column added to [`Row`] is a column of the report with no other edit.

use serde::de::{self, Deserializer, Visitor};

use crate::engine::events::Row;

/// The header of `results.csv`: [`Row`]'s fields, in order.
pub(crate) fn results_header() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The listener always answers with an error once it has the names: nothing is read.
    let _ = <Row as serde::Deserialize>::deserialize(FieldNames { fields: &mut fields });
    fields
}

/// A deserializer that reads nothing and keeps the field names a struct asks it for.
struct FieldNames<'a> {
    fields: &'a mut &'static [&'static str],
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only a struct's field names are listened for"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.fields = fields;
        Err(de::Error::custom("the field names are all that is wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_rows_fields_in_order() {
        let header = results_header();
        assert_eq!(header.first(), Some(&"line"));
        assert_eq!(header.last(), Some(&"control"));
        assert_eq!(header.len(), 16);
        assert!(header.contains(&"error_code"));
    }
}
