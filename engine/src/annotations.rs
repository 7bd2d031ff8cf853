//! Core/spurious labels of (class, feature) pairs: the paper's MTurk results file and this
//! project's own CSV, which the web explorer exports.
//!
//! - MTurk (`discover_spurious_features.csv`): one row per worker answer, columns
//!   `WorkerId, Input.wordnet_id, Input.class_index, Input.feature_index, Input.feature_rank,
//!   Answer.main, Answer.confidence, Answer.reasons`. A pair is **spurious iff at least 3
//!   answers are `background` or `separate_object`** (five workers per pair), else core.
//! - Salient CSV: one row per pair, `class,feature,label` and optionally `rank`,
//!   `votes_main_object`, `votes_separate_object`, `votes_background`.
//!
//! Errors name the file and the line.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::imagenet;

/// The two labels of the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Core,
    Spurious,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Core => "core",
            Label::Spurious => "spurious",
        }
    }
}

/// The answers to the paper's first question ("where is the focus?").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Votes {
    pub main_object: u32,
    pub separate_object: u32,
    pub background: u32,
}

impl Votes {
    pub fn spurious(&self) -> u32 {
        self.separate_object + self.background
    }

    /// The paper's rule: spurious iff ≥ 3 answers say background or separate object.
    pub fn label(&self) -> Label {
        if self.spurious() >= 3 { Label::Spurious } else { Label::Core }
    }

    /// `background`, `separate_object` or `ambiguous` for spurious pairs (§e of the method).
    pub fn spurious_kind(&self) -> Option<&'static str> {
        let kind = if self.background >= 3 {
            "background"
        } else if self.separate_object >= 3 {
            "separate_object"
        } else {
            "ambiguous"
        };
        (self.label() == Label::Spurious).then_some(kind)
    }
}

/// One labelled (class, feature) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub class: usize,
    pub feature: usize,
    pub label: Label,
    /// 1-based position among the class's top features, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub votes: Option<Votes>,
    /// The MTurk answers behind the votes, in file order (empty for Salient's CSV).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<WorkerAnswer>,
}

/// One MTurk worker's answer to a pair: where the focus is, how sure they were, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerAnswer {
    /// The anonymised worker id.
    pub worker: String,
    /// `main_object`, `separate_object` or `background`.
    pub main: String,
    /// 1 (unsure) to 5 (sure), when given.
    pub confidence: Option<f32>,
    pub reasons: String,
}

/// Sizes the labels are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub classes: usize,
    pub features: usize,
}

impl Bounds {
    /// ImageNet-1k and ResNet-50.
    pub const IMAGENET_RESNET50: Bounds = Bounds { classes: 1000, features: crate::RESNET50_FEATURES };
}

/// All labelled pairs of a file, ordered by class then rank (or feature).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotations {
    pub pairs: Vec<Pair>,
    /// MTurk answers not counted: a worker who answered the same pair again (only their first
    /// answer counts), in file order.
    #[serde(skip)]
    pub repeated: Vec<RepeatedAnswer>,
}

/// A worker's second (or later) answer to one pair, which is not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedAnswer {
    pub line: u64,
    pub worker: String,
    pub class: usize,
    pub feature: usize,
}

impl std::fmt::Display for RepeatedAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: worker {} answered class {}, feature {} again; only the first answer counts",
            self.line,
            crate::fsutil::escape(&self.worker),
            self.class,
            self.feature
        )
    }
}

const MTURK_COLUMNS: [&str; 3] = ["Input.class_index", "Input.feature_index", "Answer.main"];
const SALIENT_COLUMNS: [&str; 3] = ["class", "feature", "label"];

impl Annotations {
    /// Reads either format, recognized by its header; `name` is used in errors.
    pub fn parse(name: &str, text: &str, bounds: Bounds) -> Result<Self, Error> {
        let fail = |line: u64, m: String| Error::Invalid(format!("{name}, line {line}: {m}"));
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| fail(1, format!("cannot read the header ({e})")))?.clone();
        let col = |n: &str| header.iter().position(|h| h.trim() == n);
        let mturk = MTURK_COLUMNS.iter().all(|c| col(c).is_some());
        let salient = SALIENT_COLUMNS.iter().all(|c| col(c).is_some());
        if !mturk && !salient {
            return Err(fail(
                1,
                format!(
                    "unrecognized header {:?}{}: expected the paper's MTurk columns ({}, ...) or Salient's ({})",
                    header.iter().take(8).collect::<Vec<_>>(),
                    if header.len() > 8 { format!(" (and {} more columns)", header.len() - 8) } else { String::new() },
                    MTURK_COLUMNS.join(", "),
                    SALIENT_COLUMNS.join(",")
                ),
            ));
        }
        // (class, feature) → (rank, votes or label), in file order.
        type Tally = (Option<usize>, Votes, Option<Label>, Vec<WorkerAnswer>);
        let mut pairs: BTreeMap<(usize, usize), Tally> = BTreeMap::new();
        let mut answered: BTreeSet<(usize, usize, String)> = BTreeSet::new();
        let mut repeated = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                fail(line, format!("malformed CSV ({e})"))
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let field = |n: &str| col(n).and_then(|i| record.get(i)).map(str::trim).unwrap_or("");
            let int = |n: &str| -> Result<usize, Error> {
                field(n).parse().map_err(|_| fail(line, format!("column {n} holds {:?}, not a whole number", field(n))))
            };
            let (class_col, feature_col) =
                if mturk { ("Input.class_index", "Input.feature_index") } else { ("class", "feature") };
            let class = int(class_col)?;
            let feature = int(feature_col)?;
            if class >= bounds.classes {
                return Err(fail(line, format!("unknown class {class}: the model has {} classes", bounds.classes)));
            }
            if feature >= bounds.features {
                return Err(fail(
                    line,
                    format!("feature {feature} does not exist: the model has {} features", bounds.features),
                ));
            }
            let wnid = field("Input.wordnet_id");
            if mturk && !wnid.is_empty() && bounds.classes == 1000 && imagenet::index_of(wnid) != Some(class) {
                return Err(fail(line, format!("class {class} is not WordNet id {wnid}")));
            }
            let rank_col = if mturk { "Input.feature_rank" } else { "rank" };
            let rank = if field(rank_col).is_empty() { None } else { Some(int(rank_col)?) };
            let entry = pairs.entry((class, feature)).or_insert((rank, Votes::default(), None, Vec::new()));
            if mturk {
                let worker = field("WorkerId");
                if !worker.is_empty() && !answered.insert((class, feature, worker.to_owned())) {
                    repeated.push(RepeatedAnswer { line, worker: worker.to_owned(), class, feature });
                    continue;
                }
                let main = field("Answer.main");
                match main {
                    "main_object" => entry.1.main_object += 1,
                    "separate_object" => entry.1.separate_object += 1,
                    "background" => entry.1.background += 1,
                    other => {
                        return Err(fail(
                            line,
                            format!("answer {other:?} is not main_object, separate_object or background"),
                        ));
                    }
                }
                let confidence = match field("Answer.confidence") {
                    "" => None,
                    c => match c.parse::<f32>() {
                        Ok(v) if (0.0..=5.0).contains(&v) => Some(v),
                        _ => {
                            return Err(fail(
                                line,
                                format!("column Answer.confidence holds {c:?}, not a number from 0 to 5"),
                            ));
                        }
                    },
                };
                // Reasons are free text: at most 2000 characters of it are kept.
                let reasons: String = field("Answer.reasons").chars().take(2000).collect();
                entry.3.push(WorkerAnswer { worker: worker.to_owned(), main: main.to_owned(), confidence, reasons });
            } else {
                let label = match field("label").to_ascii_lowercase().as_str() {
                    "core" => Label::Core,
                    "spurious" => Label::Spurious,
                    other => return Err(fail(line, format!("label {other:?} is not core or spurious"))),
                };
                if entry.2.is_some() {
                    return Err(fail(line, format!("class {class}, feature {feature} is labelled twice")));
                }
                entry.2 = Some(label);
                for (column, slot) in [
                    ("votes_main_object", &mut entry.1.main_object),
                    ("votes_separate_object", &mut entry.1.separate_object),
                    ("votes_background", &mut entry.1.background),
                ] {
                    if !field(column).is_empty() {
                        *slot = field(column).parse().map_err(|_| {
                            fail(line, format!("column {column} holds {:?}, not a count", field(column)))
                        })?;
                    }
                }
            }
        }
        let mut out: Vec<Pair> = pairs
            .into_iter()
            .map(|((class, feature), (rank, votes, label, answers))| {
                let has_votes = votes != Votes::default();
                Pair {
                    class,
                    feature,
                    label: label.unwrap_or_else(|| votes.label()),
                    rank,
                    votes: has_votes.then_some(votes),
                    answers,
                }
            })
            .collect();
        out.sort_by_key(|p| (p.class, p.rank.unwrap_or(usize::MAX), p.feature));
        Ok(Annotations { pairs: out, repeated })
    }

    /// Reads a file of either format.
    pub fn load(path: &std::path::Path, bounds: Bounds) -> Result<Self, Error> {
        let bytes = crate::fsutil::read_file(path, crate::fsutil::MAX_DATA_FILE_BYTES)?;
        let text = String::from_utf8_lossy(&bytes);
        Self::parse(&crate::fsutil::shown(path), &text, bounds)
    }

    /// The pairs of each class, in rank order.
    pub fn by_class(&self) -> BTreeMap<usize, Vec<&Pair>> {
        let mut m: BTreeMap<usize, Vec<&Pair>> = BTreeMap::new();
        for p in &self.pairs {
            m.entry(p.class).or_default().push(p);
        }
        m
    }

    /// Each class's features split by label, classes in order, features in rank order.
    pub fn class_labels(&self) -> Vec<ClassLabels> {
        self.by_class()
            .into_iter()
            .map(|(class, pairs)| ClassLabels::new(class, pairs.iter().map(|p| (p.feature, p.label))))
            .collect()
    }

    /// A labelled pair, if annotated: a binary search for the class (pairs are ordered by class),
    /// then its few pairs.
    pub fn pair(&self, class: usize, feature: usize) -> Option<&Pair> {
        let start = self.pairs.partition_point(|p| p.class < class);
        self.pairs[start..].iter().take_while(|p| p.class == class).find(|p| p.feature == feature)
    }

    /// Salient's CSV (what the web explorer exports): `class,feature,label,rank,votes_*`.
    pub fn to_csv(&self) -> String {
        let header =
            ["class", "feature", "label", "rank", "votes_main_object", "votes_separate_object", "votes_background"];
        crate::table::csv(
            &header,
            self.pairs.iter().map(|p| {
                let votes = p.votes.map_or([String::new(), String::new(), String::new()], |v| {
                    [v.main_object.to_string(), v.separate_object.to_string(), v.background.to_string()]
                });
                let rank = p.rank.map(|r| r.to_string()).unwrap_or_default();
                [p.class.to_string(), p.feature.to_string(), p.label.as_str().to_owned(), rank].into_iter().chain(votes)
            }),
        )
    }

    pub fn summary(&self) -> Summary {
        let by_class = self.by_class();
        let count = |l: Label| self.pairs.iter().filter(|p| p.label == l).count();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        let mut spurious_by_rank: BTreeMap<usize, usize> = BTreeMap::new();
        for p in self.pairs.iter().filter(|p| p.label == Label::Spurious) {
            if let Some(kind) = p.votes.and_then(|v| v.spurious_kind()) {
                *kinds.entry(kind.into()).or_default() += 1;
            }
            if let Some(r) = p.rank {
                *spurious_by_rank.entry(r).or_default() += 1;
            }
        }
        let with = |l: Label| by_class.values().filter(|ps| ps.iter().any(|p| p.label == l)).count();
        let features: BTreeSet<usize> = self.pairs.iter().map(|p| p.feature).collect();
        Summary {
            pairs: self.pairs.len(),
            core: count(Label::Core),
            spurious: count(Label::Spurious),
            classes: by_class.len(),
            classes_with_spurious: with(Label::Spurious),
            classes_with_core: with(Label::Core),
            distinct_features: features.len(),
            spurious_by_kind: kinds,
            spurious_by_rank,
        }
    }
}

/// One class's labelled features: core and spurious.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassLabels {
    pub class: usize,
    pub core: Vec<usize>,
    pub spurious: Vec<usize>,
}

impl ClassLabels {
    /// Splits `(feature, label)`s, keeping their order within each label.
    pub fn new(class: usize, features: impl IntoIterator<Item = (usize, Label)>) -> Self {
        let (mut core, mut spurious) = (Vec::new(), Vec::new());
        for (feature, label) in features {
            match label {
                Label::Core => core.push(feature),
                Label::Spurious => spurious.push(feature),
            }
        }
        ClassLabels { class, core, spurious }
    }
}

/// Counts over a set of labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub pairs: usize,
    pub core: usize,
    pub spurious: usize,
    pub classes: usize,
    pub classes_with_spurious: usize,
    pub classes_with_core: usize,
    pub distinct_features: usize,
    /// background / separate_object / ambiguous (MTurk votes only).
    pub spurious_by_kind: BTreeMap<String, usize>,
    pub spurious_by_rank: BTreeMap<usize, usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds::IMAGENET_RESNET50;

    fn mturk(rows: &[(usize, &str, usize, usize, &str)]) -> String {
        let mut s = String::from(
            "WorkerId,Input.wordnet_id,Input.class_index,Input.feature_index,Input.feature_rank,Answer.main,Answer.confidence,Answer.reasons\n",
        );
        for (i, (class, wnid, feature, rank, answer)) in rows.iter().enumerate() {
            s.push_str(&format!("{i},{wnid},{class},{feature},{rank},{answer},4.0,\"because, reasons\"\n"));
        }
        s
    }

    #[test]
    fn a_worker_answering_a_pair_again_counts_once() {
        let header = "WorkerId,Input.wordnet_id,Input.class_index,Input.feature_index,Input.feature_rank,Answer.main,Answer.confidence,Answer.reasons\n";
        let mut text = header.to_owned();
        // Worker A says background three times; B and C say main object.
        for (worker, answer) in
            [("A", "background"), ("A", "background"), ("B", "main_object"), ("A", "background"), ("C", "main_object")]
        {
            text.push_str(&format!("{worker},n02281406,325,1797,1,{answer},4.0,x\n"));
        }
        let a = Annotations::parse("t.csv", &text, B).unwrap();
        assert_eq!(a.pairs[0].votes, Some(Votes { main_object: 2, separate_object: 0, background: 1 }));
        assert_eq!(a.pairs[0].label, Label::Core, "one worker's three answers are one vote");
        assert_eq!(a.repeated.iter().map(|r| (r.line, r.worker.as_str())).collect::<Vec<_>>(), [(3, "A"), (5, "A")]);
        assert_eq!(
            a.repeated[0].to_string(),
            "line 3: worker A answered class 325, feature 1797 again; only the first answer counts"
        );
    }

    #[test]
    fn three_of_five_spurious_answers_make_a_spurious_pair() {
        let w = "n02281406";
        let mut rows = vec![];
        for a in ["background", "separate_object", "background", "main_object", "main_object"] {
            rows.push((325, w, 1797, 3, a));
        }
        for a in ["background", "separate_object", "main_object", "main_object", "main_object"] {
            rows.push((325, w, 1305, 1, a));
        }
        let a = Annotations::parse("t.csv", &mturk(&rows), B).unwrap();
        assert_eq!(
            a.pairs.iter().map(|p| (p.feature, p.label)).collect::<Vec<_>>(),
            [(1305, Label::Core), (1797, Label::Spurious)]
        );
        assert_eq!(a.pairs[1].votes.unwrap().spurious_kind(), Some("ambiguous"));
        assert_eq!(a.pair(325, 1797).map(|p| p.label), Some(Label::Spurious));
        assert!(a.pair(325, 1798).is_none() && a.pair(324, 1797).is_none());
        let s = a.summary();
        assert_eq!((s.pairs, s.core, s.spurious, s.classes_with_spurious), (2, 1, 1, 1));
        // Each worker's answer is kept, in file order, the quoted reason whole.
        let answers = &a.pairs[1].answers;
        assert_eq!(
            answers.iter().map(|w| w.main.as_str()).collect::<Vec<_>>(),
            ["background", "separate_object", "background", "main_object", "main_object"]
        );
        assert_eq!(
            (answers[0].worker.as_str(), answers[0].confidence, answers[0].reasons.as_str()),
            ("0", Some(4.0), "because, reasons")
        );
        // Round trip through Salient's CSV, which holds the votes but not the answers.
        let back = Annotations::parse("t2.csv", &a.to_csv(), B).unwrap();
        let mut votes_only = a.clone();
        votes_only.pairs.iter_mut().for_each(|p| p.answers.clear());
        assert_eq!(back, votes_only);
    }

    #[test]
    fn errors_name_the_line() {
        let bad_header = Annotations::parse("a.csv", "x,y\n1,2\n", B).unwrap_err().to_string();
        assert!(bad_header.starts_with("a.csv, line 1: unrecognized header"), "{bad_header}");
        let e = Annotations::parse("a.csv", "class,feature,label\n1,2,core\n5,2048,core\n", B).unwrap_err().to_string();
        assert_eq!(e, "a.csv, line 3: feature 2048 does not exist: the model has 2048 features");
        let e = Annotations::parse("a.csv", "class,feature,label\n1000,2,core\n", B).unwrap_err().to_string();
        assert!(e.contains("line 2: unknown class 1000"), "{e}");
        let e =
            Annotations::parse("a.csv", &mturk(&[(0, "n02281406", 5, 1, "background")]), B).unwrap_err().to_string();
        assert!(e.contains("line 2: class 0 is not WordNet id n02281406"), "{e}");
        let e = Annotations::parse("a.csv", "class,feature,label\n1,2,maybe\n", B).unwrap_err().to_string();
        assert!(e.contains("line 2: label \"maybe\""), "{e}");
        let e = Annotations::parse("a.csv", "class,feature,label\n1,2,core,extra\n", B).unwrap_err().to_string();
        assert!(e.contains("line 2: malformed CSV"), "{e}");
    }
}
