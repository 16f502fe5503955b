//! Build plans: what `bin/detect` writes (`[[provides]]`, `[[requires]]`, `[[or]]`
//! alternatives), the resolved `plan.toml` the detector writes, and the per-buildpack plan
//! `bin/build` reads (`CNB_BP_PLAN_PATH`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{bounded, parse, read_required, to_toml, write_toml, FormatError, Problem};
use crate::id::BuildpackId;
use crate::read::Limits;

/// A dependency a buildpack provides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Provide {
    pub name: String,
}

/// A dependency a buildpack requires, with buildpack-specific metadata.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Require {
    pub name: String,
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub metadata: toml::Table,
}

/// One alternative of a build plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanSections {
    pub provides: Vec<Provide>,
    pub requires: Vec<Require>,
}

/// What `bin/detect` wrote to `CNB_BUILD_PLAN_PATH`: a first alternative and the `[[or]]`
/// ones, tried in that order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildPlan {
    pub first: PlanSections,
    pub or: Vec<PlanSections>,
}

impl BuildPlan {
    /// Every alternative, first the top-level one.
    pub fn alternatives(&self) -> impl Iterator<Item = &PlanSections> {
        std::iter::once(&self.first).chain(self.or.iter())
    }
}

#[derive(Deserialize)]
struct RawSections {
    #[serde(default)]
    provides: Vec<Provide>,
    #[serde(default)]
    requires: Vec<RawRequire>,
}

#[derive(Deserialize)]
struct RawBuildPlan {
    #[serde(flatten)]
    first: RawSections,
    #[serde(default)]
    or: Vec<RawSections>,
}

#[derive(Deserialize)]
struct RawRequire {
    name: String,
    version: Option<toml::Value>,
    #[serde(default)]
    metadata: toml::Table,
}

/// Parses a build plan. A top-level `version` in a require is refused, as the reference
/// lifecycle does (`metadata.version` is the place for it).
pub fn parse_build_plan(
    text: &str,
    path: &Path,
    limits: &Limits,
) -> Result<BuildPlan, FormatError> {
    let raw: RawBuildPlan = parse(text, path)?;
    let count = std::iter::once(&raw.first)
        .chain(raw.or.iter())
        .map(|s| s.provides.len() + s.requires.len() + 1)
        .sum::<usize>();
    bounded(path, "requires", count, limits.plan_entries)?;
    let sections = |raw: RawSections, prefix: &str| -> Result<PlanSections, FormatError> {
        let mut requires = Vec::with_capacity(raw.requires.len());
        for (i, r) in raw.requires.into_iter().enumerate() {
            let key = format!("{prefix}requires[{i}].version");
            if r.version.is_some() {
                let problem = if r.metadata.contains_key("version") {
                    Problem::DoublyVersion(r.name)
                } else {
                    Problem::TopLevelVersion(r.name)
                };
                return Err(FormatError::invalid(path, key, problem));
            }
            requires.push(Require {
                name: r.name,
                metadata: r.metadata,
            });
        }
        Ok(PlanSections {
            provides: raw.provides,
            requires,
        })
    };
    let first = sections(raw.first, "")?;
    let or = raw
        .or
        .into_iter()
        .enumerate()
        .map(|(i, s)| sections(s, &format!("or[{i}].")))
        .collect::<Result<_, _>>()?;
    Ok(BuildPlan { first, or })
}

/// A buildpack providing a plan entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Provider {
    pub id: BuildpackId,
    pub version: String,
}

/// One dependency name of `plan.toml`: who provides it, and every require of it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PlanEntry {
    pub providers: Vec<Provider>,
    pub requires: Vec<Require>,
}

/// `plan.toml`, the resolved build plan.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Plan {
    #[serde(default)]
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// The plan for buildpack `id`: the requires of every entry it provides (the reference
    /// `Plan.Find`).
    pub fn find(&self, id: &BuildpackId) -> BuildpackPlan {
        let entries = self
            .entries
            .iter()
            .filter(|e| e.providers.iter().any(|p| &p.id == id))
            .flat_map(|e| e.requires.iter().cloned())
            .collect();
        BuildpackPlan { entries }
    }

    /// The plan without the entries one of whose requires is named in `met` (the reference
    /// `Plan.Filter`): what a buildpack met is not passed on to later providers.
    pub fn without_met(&self, met: &[String]) -> Plan {
        let entries = self
            .entries
            .iter()
            .filter(|e| !e.requires.iter().any(|r| met.contains(&r.name)))
            .cloned()
            .collect();
        Plan { entries }
    }

    pub fn to_toml(&self, path: &Path) -> Result<String, FormatError> {
        to_toml(path, self)
    }

    pub fn write(&self, path: &Path) -> Result<(), FormatError> {
        write_toml(path, self)
    }

    pub fn parse(text: &str, path: &Path, limits: &Limits) -> Result<Plan, FormatError> {
        let plan: Plan = parse(text, path)?;
        bounded(path, "entries", plan.entries.len(), limits.plan_entries)?;
        Ok(plan)
    }

    pub fn read(path: &Path, limits: &Limits) -> Result<Plan, FormatError> {
        let text = read_required(path, limits.file_bytes)?;
        Plan::parse(&text, path, limits)
    }
}

/// The Buildpack Plan one buildpack's `bin/build` gets: `[[entries]] name, metadata`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct BuildpackPlan {
    #[serde(default)]
    pub entries: Vec<Require>,
}

impl BuildpackPlan {
    pub fn write(&self, path: &Path) -> Result<(), FormatError> {
        write_toml(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/tmp/plan.toml";

    fn build_plan(text: &str) -> Result<BuildPlan, FormatError> {
        parse_build_plan(text, Path::new(PATH), &Limits::DEFAULT)
    }

    #[test]
    fn a_build_plan_with_alternatives() {
        let plan = build_plan(
            r#"[[provides]]
name = "httpd"
[[requires]]
name = "httpd"
[requires.metadata]
root = "static"

[[or]]
[[or.provides]]
name = "nginx"
[[or.requires]]
name = "nginx"
"#,
        )
        .unwrap();
        assert_eq!(
            plan.first.provides,
            vec![Provide {
                name: "httpd".into()
            }]
        );
        assert_eq!(
            plan.first.requires[0].metadata["root"].as_str(),
            Some("static")
        );
        assert_eq!(plan.or.len(), 1);
        assert_eq!(plan.or[0].requires[0].name, "nginx");
        assert_eq!(plan.alternatives().count(), 2);
        assert_eq!(build_plan("").unwrap(), BuildPlan::default());
    }

    #[test]
    fn a_top_level_version_is_refused_as_the_reference_lifecycle_does() {
        let error = build_plan("[[requires]]\nname = \"ruby\"\nversion = \"3\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "/tmp/plan.toml: `requires[0].version` of `ruby` is not supported: use `metadata.version`"
        );
        let error = build_plan("[[or]]\n[[or.requires]]\nname = \"r\"\nversion = \"3\"\n[or.requires.metadata]\nversion = \"3\"\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`or[0].requires[0].version` of `r` is given twice"),
            "{error}"
        );
        let error = build_plan("[[requires]]\nmetadata = {}\n").unwrap_err();
        assert!(matches!(error, FormatError::Parse { .. }), "{error}");
    }

    #[test]
    fn plan_find_and_filter_follow_the_reference() {
        let a = BuildpackId::parse("a").unwrap();
        let b = BuildpackId::parse("b").unwrap();
        let req = |name: &str| Require {
            name: name.into(),
            metadata: toml::Table::new(),
        };
        let plan = Plan {
            entries: vec![
                PlanEntry {
                    providers: vec![
                        Provider {
                            id: a.clone(),
                            version: "1".into(),
                        },
                        Provider {
                            id: b.clone(),
                            version: "1".into(),
                        },
                    ],
                    requires: vec![req("x"), req("x")],
                },
                PlanEntry {
                    providers: vec![Provider {
                        id: b.clone(),
                        version: "1".into(),
                    }],
                    requires: vec![req("y")],
                },
            ],
        };
        assert_eq!(plan.find(&a).entries.len(), 2);
        assert_eq!(plan.find(&b).entries.len(), 3);
        let rest = plan.without_met(&["x".into()]);
        assert_eq!(rest.entries.len(), 1);
        assert!(rest.find(&a).entries.is_empty());
        let text = plan.to_toml(Path::new(PATH)).unwrap();
        assert_eq!(
            Plan::parse(&text, Path::new(PATH), &Limits::DEFAULT).unwrap(),
            plan
        );
    }
}
