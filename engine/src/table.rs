//! CSV output, always through the `csv` crate's writer: a field holding a comma, a quote or a
//! line break (a class name such as "tench, Tinca tinca", an image name) is quoted, never
//! spliced into the next column.

/// A CSV document: the header, then one line per row; `\n` line ends.
pub fn csv<R, F>(header: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = F>,
    F: IntoIterator<Item = String>,
{
    let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    // Writing to memory cannot fail.
    out.write_record(header).expect("in memory");
    for row in rows {
        out.write_record(row).expect("in memory");
    }
    String::from_utf8(out.into_inner().expect("in memory")).expect("UTF-8 fields")
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_that_need_it_are_quoted() {
        let text = super::csv(
            &["a", "b"],
            [vec!["tench, Tinca tinca".to_owned(), "say \"hi\"".to_owned()], vec!["1".into(), String::new()]],
        );
        assert_eq!(text, "a,b\n\"tench, Tinca tinca\",\"say \"\"hi\"\"\"\n1,\n");
    }
}
