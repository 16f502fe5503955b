//! Build plan resolution, as the reference lifecycle's `DefaultDetectResolver` does it.
//!
//! Of a group's buildpacks, those that passed are combined into *trials*: one alternative
//! of each one's build plan (its top-level provides/requires, then each `[[or]]`),
//! depth-first, so the first trial takes every buildpack's first alternative. A buildpack
//! marked optional counts as optional only in its last alternative. Within a trial the
//! buildpacks are walked in order, each one's provides recorded before its requires; a
//! require links to every provide of that name seen so far (its own included). A require
//! with no provider before it, or a provide no later require takes, removes its buildpack
//! from the trial if that one is optional (and the trial is recomputed), and fails the
//! trial if it is not. The first trial that holds gives the group and `plan.toml`.

use std::collections::HashMap;

use super::{DetectError, DetectRun, GroupError, Member, Outcome};
use crate::formats::plan::{BuildPlan, Plan, PlanEntry, PlanSections, Provider, Require};

/// One buildpack's chosen alternative in a trial.
#[derive(Clone)]
struct Choice<'p> {
    member: Member,
    sections: &'p PlanSections,
}

/// Decides whether the group `done` (with the detect `runs` of its members, in the same
/// order) passes, and with which buildpacks and plan. `max_trials` bounds the combinations
/// of alternatives tried.
pub(crate) fn resolve(
    done: &[Member],
    runs: &[&DetectRun],
    max_trials: usize,
) -> Result<(Vec<Member>, Plan), GroupError> {
    let mut detected = true;
    let mut any_passed = false;
    let mut buildpack_error = false;
    let mut passed: Vec<(Member, &BuildPlan)> = Vec::new();
    for (member, run) in done.iter().zip(runs) {
        match &run.outcome {
            Outcome::Pass(plan) => {
                passed.push((member.clone(), plan));
                any_passed = true;
            }
            Outcome::Fail => detected &= member.optional,
            Outcome::Error(_) => {
                // An erroring optional buildpack does not fail the group, but if the group
                // fails anyway the error is what is reported.
                buildpack_error = true;
                detected &= member.optional;
            }
        }
    }
    if !detected {
        return Err(if buildpack_error {
            GroupError::Buildpack
        } else {
            GroupError::Failed
        });
    }
    if !any_passed {
        return Err(GroupError::Failed);
    }
    let mut trials = 0usize;
    let (deps, trial) = run_trials(&passed, Vec::new(), &mut trials, max_trials)?;
    let members = trial
        .into_iter()
        .map(|c| Member {
            optional: false,
            ..c.member
        })
        .collect();
    Ok((members, deps.into_plan()))
}

fn run_trials<'p>(
    rest: &[(Member, &'p BuildPlan)],
    prefix: Vec<Choice<'p>>,
    trials: &mut usize,
    max_trials: usize,
) -> Result<(Deps, Vec<Choice<'p>>), GroupError> {
    let Some(((member, plan), rest)) = rest.split_first() else {
        *trials += 1;
        if *trials > max_trials {
            return Err(GroupError::Fatal(DetectError::TooManyTrials {
                limit: max_trials,
            }));
        }
        return run_trial(prefix);
    };
    let last = plan.or.len();
    let mut last_error = GroupError::Failed;
    for (i, sections) in plan.alternatives().enumerate() {
        let mut choice = Choice {
            member: member.clone(),
            sections,
        };
        choice.member.optional = member.optional && i == last;
        let mut next = prefix.clone();
        next.push(choice);
        match run_trials(rest, next, trials, max_trials) {
            Ok(found) => return Ok(found),
            Err(GroupError::Fatal(error)) => return Err(GroupError::Fatal(error)),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

fn run_trial(mut trial: Vec<Choice<'_>>) -> Result<(Deps, Vec<Choice<'_>>), GroupError> {
    loop {
        let deps = Deps::new(&trial);
        let unmet: Vec<&Member> = deps.unmet().collect();
        if unmet.is_empty() {
            if trial.is_empty() {
                return Err(GroupError::Failed);
            }
            return Ok((deps, trial));
        }
        if unmet.iter().any(|m| !m.optional) {
            return Err(GroupError::Failed);
        }
        let removed: Vec<_> = unmet.iter().map(|m| m.id.clone()).collect();
        trial.retain(|c| !removed.contains(&c.member.id));
    }
}

/// One dependency name in a trial.
#[derive(Default)]
struct Dep {
    providers: Vec<Member>,
    requires: Vec<Require>,
    /// Requires seen before any provider.
    early_requires: Vec<Member>,
    /// Provides not yet taken by a require.
    extra_provides: Vec<Member>,
}

/// The dependencies of a trial, in the order their names first appear.
struct Deps {
    names: Vec<String>,
    deps: HashMap<String, Dep>,
}

impl Deps {
    fn new(trial: &[Choice<'_>]) -> Deps {
        let mut deps = Deps {
            names: Vec::new(),
            deps: HashMap::new(),
        };
        for choice in trial {
            for provide in &choice.sections.provides {
                deps.entry(&provide.name)
                    .extra_provides
                    .push(choice.member.clone());
            }
            for require in &choice.sections.requires {
                let dep = deps.entry(&require.name);
                let extra = std::mem::take(&mut dep.extra_provides);
                dep.providers.extend(extra);
                if dep.providers.is_empty() {
                    dep.early_requires.push(choice.member.clone());
                } else {
                    dep.requires.push(require.clone());
                }
            }
        }
        deps
    }

    fn entry(&mut self, name: &str) -> &mut Dep {
        if !self.deps.contains_key(name) {
            self.names.push(name.to_string());
        }
        self.deps.entry(name.to_string()).or_default()
    }

    /// The buildpacks with a require nobody provided before, or a provide nobody took.
    fn unmet(&self) -> impl Iterator<Item = &Member> {
        self.names.iter().flat_map(|name| {
            let dep = &self.deps[name];
            dep.early_requires.iter().chain(dep.extra_provides.iter())
        })
    }

    fn into_plan(mut self) -> Plan {
        let entries = self
            .names
            .iter()
            .filter_map(|name| self.deps.remove(name))
            .map(|dep| PlanEntry {
                providers: dep
                    .providers
                    .into_iter()
                    .map(|m| Provider {
                        id: m.id,
                        version: m.version,
                    })
                    .collect(),
                requires: dep.requires,
            })
            .collect();
        Plan { entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Api;
    use crate::formats::plan::Provide;
    use crate::id::BuildpackId;

    fn member(id: &str, optional: bool) -> Member {
        Member {
            id: BuildpackId::parse(id).unwrap(),
            version: "1".into(),
            optional,
            api: Api::new(0, 10),
            homepage: None,
        }
    }

    fn sections(provides: &[&str], requires: &[&str]) -> PlanSections {
        PlanSections {
            provides: provides
                .iter()
                .map(|n| Provide {
                    name: n.to_string(),
                })
                .collect(),
            requires: requires
                .iter()
                .map(|n| Require {
                    name: n.to_string(),
                    metadata: toml::Table::new(),
                })
                .collect(),
        }
    }

    fn pass(id: &str, first: PlanSections, or: Vec<PlanSections>) -> DetectRun {
        DetectRun {
            id: BuildpackId::parse(id).unwrap(),
            version: "1".into(),
            outcome: Outcome::Pass(BuildPlan { first, or }),
            output: String::new(),
        }
    }

    fn fail(id: &str) -> DetectRun {
        DetectRun {
            id: BuildpackId::parse(id).unwrap(),
            version: "1".into(),
            outcome: Outcome::Fail,
            output: String::new(),
        }
    }

    /// Resolves, giving the ids chosen and each plan entry as `name: providers`.
    fn run(
        done: &[Member],
        runs: &[DetectRun],
    ) -> Result<(Vec<String>, Vec<String>), &'static str> {
        let runs: Vec<&DetectRun> = runs.iter().collect();
        match resolve(done, &runs, 1000) {
            Ok((members, plan)) => Ok((
                members.iter().map(|m| m.id.to_string()).collect(),
                plan.entries
                    .iter()
                    .map(|e| {
                        let providers: Vec<String> =
                            e.providers.iter().map(|p| p.id.to_string()).collect();
                        format!(
                            "{}: {} ({} requires)",
                            e.requires[0].name,
                            providers.join(","),
                            e.requires.len()
                        )
                    })
                    .collect(),
            )),
            Err(GroupError::Failed) => Err("failed"),
            Err(GroupError::Buildpack) => Err("buildpack"),
            Err(GroupError::Fatal(_)) => Err("fatal"),
        }
    }

    #[test]
    fn provides_link_to_later_requires_and_own_requires() {
        let done = [member("a", false), member("b", false)];
        let runs = [
            pass("a", sections(&["x"], &["x"]), vec![]),
            pass("b", sections(&[], &["x"]), vec![]),
        ];
        assert_eq!(
            run(&done, &runs),
            Ok((
                vec!["a".into(), "b".into()],
                vec!["x: a (2 requires)".into()]
            ))
        );
    }

    #[test]
    fn a_require_before_its_provider_fails_the_trial() {
        let done = [member("a", false), member("b", false)];
        let runs = [
            pass("a", sections(&[], &["x"]), vec![]),
            pass("b", sections(&["x"], &[]), vec![]),
        ];
        assert_eq!(run(&done, &runs), Err("failed"));
    }

    #[test]
    fn an_unused_provide_fails_a_required_buildpack_and_drops_an_optional_one() {
        let runs = [
            pass("a", sections(&["x"], &[]), vec![]),
            pass("b", sections(&[], &[]), vec![]),
        ];
        assert_eq!(
            run(&[member("a", false), member("b", false)], &runs),
            Err("failed")
        );
        assert_eq!(
            run(&[member("a", true), member("b", false)], &runs),
            Ok((vec!["b".into()], vec![]))
        );
    }

    #[test]
    fn or_alternatives_are_tried_depth_first() {
        // a's first alternative provides y, which nobody requires: the trial fails and a's
        // second alternative (x) is tried.
        let done = [member("a", false), member("b", false)];
        let runs = [
            pass("a", sections(&["y"], &[]), vec![sections(&["x"], &[])]),
            pass("b", sections(&[], &["x"]), vec![]),
        ];
        assert_eq!(
            run(&done, &runs),
            Ok((
                vec!["a".into(), "b".into()],
                vec!["x: a (1 requires)".into()]
            ))
        );
    }

    #[test]
    fn an_optional_buildpack_is_optional_only_in_its_last_alternative() {
        // b (optional) first requires python (nobody provides it): not optional in that
        // alternative, so the trial fails; its last alternative requires nothing and b stays.
        let done = [member("a", false), member("b", true)];
        let runs = [
            pass("a", sections(&[], &[]), vec![]),
            pass("b", sections(&[], &["python"]), vec![sections(&[], &[])]),
        ];
        assert_eq!(
            run(&done, &runs),
            Ok((vec!["a".into(), "b".into()], vec![]))
        );
        // With one alternative only, the unmet require drops b.
        let runs = [
            pass("a", sections(&[], &[]), vec![]),
            pass("b", sections(&[], &["python"]), vec![]),
        ];
        assert_eq!(run(&done, &runs), Ok((vec!["a".into()], vec![])));
    }

    #[test]
    fn removing_an_optional_buildpack_recomputes_the_trial() {
        // c (optional) requires z, unmet: removed. Then b's provide of w, taken only by c,
        // is unmet: b is optional too and goes in the next round.
        let done = [member("a", false), member("b", true), member("c", true)];
        let runs = [
            pass("a", sections(&["x"], &["x"]), vec![]),
            pass("b", sections(&["w"], &[]), vec![]),
            pass("c", sections(&[], &["z", "w"]), vec![]),
        ];
        assert_eq!(
            run(&done, &runs),
            Ok((vec!["a".into()], vec!["x: a (1 requires)".into()]))
        );
    }

    #[test]
    fn failing_and_erroring_buildpacks() {
        let done = [member("a", false), member("b", true)];
        assert_eq!(
            run(&done, &[pass("a", sections(&[], &[]), vec![]), fail("b")]),
            Ok((vec!["a".into()], vec![]))
        );
        assert_eq!(
            run(&done, &[fail("a"), pass("b", sections(&[], &[]), vec![])]),
            Err("failed")
        );
        let error = DetectRun {
            id: BuildpackId::parse("b").unwrap(),
            version: "1".into(),
            outcome: Outcome::Error(super::super::RunError::Exit(crate::exec::Exit::Code(1))),
            output: String::new(),
        };
        assert_eq!(
            run(&done, &[fail("a"), error]),
            Err("buildpack"),
            "an erroring optional buildpack is reported"
        );
        // Only optional buildpacks, none passing: no viable buildpack.
        assert_eq!(run(&[member("a", true)], &[fail("a")]), Err("failed"));
    }

    #[test]
    fn several_providers_share_one_entry() {
        let done = [member("a", false), member("b", false), member("c", false)];
        let runs = [
            pass("a", sections(&["x"], &[]), vec![]),
            pass("b", sections(&["x"], &[]), vec![]),
            pass("c", sections(&[], &["x"]), vec![]),
        ];
        assert_eq!(
            run(&done, &runs),
            Ok((
                vec!["a".into(), "b".into(), "c".into()],
                vec!["x: a,b (1 requires)".into()]
            ))
        );
    }

    #[test]
    fn combinations_are_bounded() {
        let alternatives = || vec![sections(&["u"], &[]); 9];
        let ids = ["a", "b", "c", "d"];
        let done: Vec<Member> = ids.iter().map(|id| member(id, false)).collect();
        let runs: Vec<DetectRun> = ids
            .iter()
            .map(|id| pass(id, sections(&["u"], &[]), alternatives()))
            .collect();
        let runs: Vec<&DetectRun> = runs.iter().collect();
        assert!(matches!(
            resolve(&done, &runs, 100),
            Err(GroupError::Fatal(DetectError::TooManyTrials { limit: 100 }))
        ));
    }

    #[test]
    fn unmet_optional_provides_and_requires_are_dropped_as_in_the_reference() {
        // The reference's "succeeds if unmet provides/requires are optional".
        let done = [member("a", true), member("b", false), member("c", true)];
        let runs = [
            pass("a", sections(&[], &["dep-missing"]), vec![]),
            pass("b", sections(&["dep-present"], &["dep-present"]), vec![]),
            pass("c", sections(&["dep-missing"], &[]), vec![]),
        ];
        assert_eq!(
            run(&done, &runs),
            Ok((vec!["b".into()], vec!["dep-present: b (1 requires)".into()]))
        );
    }

    #[test]
    fn alternatives_fall_back_as_in_the_reference_on_the_sixteenth_trial() {
        // The reference's "falls back to alternate build plans": it succeeds on try #16.
        let done = [
            member("a", true),
            member("b", true),
            member("c", false),
            member("d", true),
        ];
        let runs = [
            pass(
                "a",
                sections(&["dep2-missing"], &[]),
                vec![sections(&["dep1-present"], &[])],
            ),
            pass(
                "b",
                sections(&[], &["dep3-missing"]),
                vec![sections(&[], &["dep1-present"])],
            ),
            pass(
                "c",
                sections(&["dep5-missing"], &["dep4-missing"]),
                vec![sections(&["dep6-present"], &["dep6-present"])],
            ),
            pass(
                "d",
                sections(&["dep8-missing"], &["dep7-missing"]),
                vec![sections(&["dep10-missing"], &["dep9-missing"])],
            ),
        ];
        assert_eq!(
            run(&done, &runs),
            Ok((
                vec!["a".into(), "b".into(), "c".into()],
                vec![
                    "dep1-present: a (1 requires)".into(),
                    "dep6-present: c (1 requires)".into()
                ]
            ))
        );
        let runs: Vec<&DetectRun> = runs.iter().collect();
        assert!(resolve(&done, &runs, 16).is_ok());
        assert!(matches!(
            resolve(&done, &runs, 15),
            Err(GroupError::Fatal(DetectError::TooManyTrials { .. }))
        ));
    }
}
