//! Property tests: the visits fast path against the generic reader (the oracle), and writer →
//! reader round trips, on random records.

use chainbreak_core::model::{Visit, VisitSource};
use chainbreak_formats::visits::VisitReader;
use chainbreak_formats::{Format, RecordReader, RecordWriter};
use jiff::Timestamp;
use proptest::prelude::*;

fn id() -> impl Strategy<Value = String> {
    // Short and long ids, with characters CSV must quote.
    prop_oneof![
        "[A-Z][0-9]{1,8}",
        "[a-z0-9 ,\"-]{1,30}".prop_filter("not blank", |s| !s.trim().is_empty() && s.trim() == s),
    ]
}

fn visit() -> impl Strategy<Value = Visit> {
    (id(), id(), 0i64..4_000_000_000, proptest::option::of(0i64..100_000), 0usize..VisitSource::ALL.len()).prop_map(
        |(person_id, place_id, t_in, dwell, source)| Visit {
            person_id,
            place_id,
            t_in: Timestamp::from_second(t_in).unwrap(),
            t_out: dwell.map(|d| Timestamp::from_second(t_in + d).unwrap()),
            source: VisitSource::ALL[source],
        },
    )
}

fn write(visits: &[Visit], format: Format) -> Vec<u8> {
    let mut w = RecordWriter::new(Vec::new(), format).unwrap();
    for v in visits {
        w.write(v).unwrap();
    }
    w.finish().unwrap()
}

proptest! {
    // A fixed seed: the same cases on every run (PROPTEST_RNG_SEED does not override it).
    #![proptest_config(ProptestConfig {
        cases: 200,
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_c4a1),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fast_visit_reader_agrees_with_the_generic_reader(visits in proptest::collection::vec(visit(), 0..60)) {
        let bytes = write(&visits, Format::Csv);
        let oracle: Vec<Visit> = RecordReader::new(bytes.as_slice(), Format::Csv, "v.csv").unwrap().map(|r| r.unwrap().1).collect();
        prop_assert_eq!(&oracle, &visits);
        let mut fast = VisitReader::new(bytes.as_slice(), "v.csv").unwrap();
        let mut got = Vec::new();
        while let Some(r) = fast.next() {
            let v = r.unwrap();
            got.push(Visit {
                person_id: String::from_utf8(v.person_id.to_vec()).unwrap(),
                place_id: String::from_utf8(v.place_id.to_vec()).unwrap(),
                t_in: Timestamp::from_second(v.t_in).unwrap(),
                t_out: v.t_out.map(|t| Timestamp::from_second(t).unwrap()),
                source: v.source,
            });
        }
        prop_assert_eq!(got, visits);
    }

    #[test]
    fn json_lines_round_trip(visits in proptest::collection::vec(visit(), 0..40)) {
        let bytes = write(&visits, Format::JsonLines);
        let back: Vec<Visit> = RecordReader::new(bytes.as_slice(), Format::JsonLines, "v.jsonl").unwrap().map(|r| r.unwrap().1).collect();
        prop_assert_eq!(back, visits);
    }

    #[test]
    fn a_corrupted_instant_is_reported_on_its_line(visits in proptest::collection::vec(visit(), 1..30), pick in any::<prop::sample::Index>()) {
        // Plain ids, so that the only `,<t_in>,` on a line is the t_in column.
        let visits: Vec<Visit> = visits
            .into_iter()
            .enumerate()
            .map(|(k, v)| Visit { person_id: format!("P{k}"), place_id: format!("L{k}"), ..v })
            .collect();
        let i = pick.index(visits.len());
        let text = String::from_utf8(write(&visits, Format::Csv)).unwrap();
        // The record of visit i is on line i + 2 (the header is line 1).
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let t_in = visits[i].t_in.to_string(); // written as RFC 3339
        lines[i + 1] = lines[i + 1].replacen(&format!(",{t_in},"), ",x,", 1);
        prop_assume!(lines[i + 1].contains(",x,"));
        let text = lines.join("\n") + "\n";
        let mut fast = VisitReader::new(text.as_bytes(), "v.csv").unwrap();
        let mut first_error = None;
        while let Some(r) = fast.next() {
            if let Err(e) = r { first_error = Some(e.error); break; }
        }
        let e = first_error.expect("the corrupted row fails");
        prop_assert_eq!(e.location.line, Some(i as u64 + 2));
        prop_assert_eq!(e.location.field.as_deref(), Some("t_in"));
    }
}
