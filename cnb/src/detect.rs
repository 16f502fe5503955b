//! Detection: which group of buildpacks builds this app, and the build plan they agree on.
//!
//! The order is walked as the reference lifecycle's `Detector` does: groups in order; a
//! composite buildpack's own order spliced in at its place (depth-first, the rest of the
//! group appended to each of its groups, and, when the composite is optional, the rest
//! alone as a last try); a buildpack already in the group is not run again; each
//! buildpack's `bin/detect` runs at most once per detection (results are reused across
//! groups). A group passes when every non-optional buildpack passed (exit 0; 100 is a
//! fail, anything else an error) and at least one passed, and a build plan resolves
//! ([`resolve`], the reference `DefaultDetectResolver`). The first group that passes wins.
//!
//! Where this differs from the reference: an *optional* buildpack whose targets do not
//! match the run image is skipped rather than run (the reference runs it anyway), and the
//! entries of `plan.toml` come in the order their names first appear in the group (the
//! reference's order is a Go map's, i.e. random).

use std::collections::HashMap;
use std::path::Path;

use crate::api::Api;
use crate::context::Context;
use crate::env::EnvError;
use crate::exec::{Captured, Exit};
use crate::formats::descriptor::Descriptor;
use crate::formats::order::{Group, GroupMember, OrderEntry, OrderGroup};
use crate::formats::plan::{parse_build_plan, BuildPlan, Plan};
use crate::formats::FormatError;
use crate::id::BuildpackId;
use crate::read::read_text;

pub mod resolve;

/// Detect's exit codes (Platform API): no group passed, or one failed because a buildpack
/// errored.
pub const EXIT_NO_GROUP: i32 = 20;
pub const EXIT_BUILDPACK_ERROR: i32 = 21;

/// The outcome of one buildpack's `bin/detect`.
#[derive(Debug)]
pub enum Outcome {
    /// Exit 0, with the build plan it wrote.
    Pass(BuildPlan),
    /// Exit 100.
    Fail,
    Error(RunError),
}

/// Why a buildpack's detection is an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Exit(Exit),
    #[error("could not run bin/detect: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Plan(FormatError),
    #[error(transparent)]
    Env(EnvError),
    #[error("its targets do not match the run image ({run})")]
    Target { run: String },
}

/// One buildpack's detection, with its output (bounded).
#[derive(Debug)]
pub struct DetectRun {
    pub id: BuildpackId,
    pub version: String,
    pub outcome: Outcome,
    pub output: String,
}

impl DetectRun {
    /// `<id>@<version>: pass`, `fail` or `error: <why>`.
    pub fn summary(&self) -> String {
        let what = match &self.outcome {
            Outcome::Pass(_) => "pass".to_string(),
            Outcome::Fail => "fail".to_string(),
            Outcome::Error(error) => format!("error: {error}"),
        };
        format!("{}@{}: {what}", self.id, self.version)
    }
}

/// What detection chose.
#[derive(Debug)]
pub struct Detected {
    /// `group.toml`.
    pub group: Group,
    /// `plan.toml`.
    pub plan: Plan,
    /// Every buildpack run, in the order they ran.
    pub runs: Vec<DetectRun>,
}

impl Detected {
    /// Writes `group.toml` and `plan.toml`.
    pub fn write(&self, group_path: &Path, plan_path: &Path) -> Result<(), FormatError> {
        self.group.write(group_path)?;
        self.plan.write(plan_path)
    }
}

/// Why detection chose nothing.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// No group passed; `errored` when a buildpack errored (not just failed) on the way.
    /// `tried` lists the groups resolved, in order (`id@version` each).
    #[error("{}", no_group_message(*errored, tried, runs))]
    NoGroup {
        errored: bool,
        tried: Vec<Vec<String>>,
        runs: Vec<DetectRun>,
    },
    #[error(transparent)]
    Buildpack(#[from] FormatError),
    #[error("composite buildpacks nest more than {limit} deep (at {id})")]
    TooDeep { id: BuildpackId, limit: usize },
    #[error("the order expands to more than {limit} groups")]
    TooManyGroups { limit: usize },
    #[error("resolving the build plan tried more than {limit} combinations of alternatives")]
    TooManyTrials { limit: usize },
    #[error("{}: {source}", path.display())]
    Scratch {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Groups shown in a [`DetectError::NoGroup`] message, at most.
const GROUPS_SHOWN: usize = 10;

fn no_group_message(errored: bool, tried: &[Vec<String>], runs: &[DetectRun]) -> String {
    let mut text = if errored {
        "no buildpack group passed detection: a buildpack failed with an error".to_string()
    } else {
        "no buildpack group passed detection".to_string()
    };
    for group in tried.iter().take(GROUPS_SHOWN) {
        text.push_str(&format!("\n  tried: {}", group.join(", ")));
    }
    if tried.len() > GROUPS_SHOWN {
        text.push_str(&format!(
            "\n  tried: … {} more groups",
            tried.len() - GROUPS_SHOWN
        ));
    }
    for run in runs {
        text.push_str("\n  ");
        text.push_str(&run.summary());
        for line in run.output.lines() {
            text.push_str("\n    ");
            text.push_str(line);
        }
    }
    text
}

impl DetectError {
    /// The platform's exit code for this error: 20, 21, or 1 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            DetectError::NoGroup { errored: false, .. } => EXIT_NO_GROUP,
            DetectError::NoGroup { errored: true, .. } => EXIT_BUILDPACK_ERROR,
            _ => 1,
        }
    }
}

/// A buildpack of a group being tried: from the order, with its API and homepage once
/// looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub id: BuildpackId,
    pub version: String,
    pub optional: bool,
    pub api: Api,
    pub homepage: Option<String>,
}

impl Member {
    fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

/// Why a group did not pass (the reference's `ErrFailedDetection` and `ErrBuildpack`),
/// or a fault that stops detection altogether.
pub(crate) enum GroupError {
    Failed,
    Buildpack,
    Fatal(DetectError),
}

type GroupResult = Result<(Vec<Member>, Plan), GroupError>;

/// Detection under way: the descriptors looked up and the runs made so far.
struct Detector<'a> {
    context: &'a Context<'a>,
    descriptors: HashMap<String, Descriptor>,
    runs: Vec<DetectRun>,
    run_index: HashMap<String, usize>,
    groups_tried: usize,
    tried: Vec<Vec<String>>,
}

/// Finds the first group of `order` that passes.
pub fn detect(context: &Context<'_>, order: &[OrderGroup]) -> Result<Detected, DetectError> {
    Detector::new(context).detect(order)
}

impl<'a> Detector<'a> {
    fn new(context: &'a Context<'a>) -> Detector<'a> {
        Detector {
            context,
            descriptors: HashMap::new(),
            runs: Vec::new(),
            run_index: HashMap::new(),
            groups_tried: 0,
            tried: Vec::new(),
        }
    }

    fn detect(mut self, order: &[OrderGroup]) -> Result<Detected, DetectError> {
        let result = self.detect_order(order, &[], &[], false, 0);
        let runs = std::mem::take(&mut self.runs);
        for run in &runs {
            tracing::debug!(buildpack = %run.id, output = %run.output, "{}", run.summary());
        }
        match result {
            Ok((members, plan)) => Ok(Detected {
                group: Group {
                    group: members
                        .into_iter()
                        .map(|m| GroupMember {
                            id: m.id,
                            version: m.version,
                            api: m.api,
                            homepage: m.homepage,
                        })
                        .collect(),
                },
                plan,
                runs,
            }),
            Err(GroupError::Failed) => Err(DetectError::NoGroup {
                errored: false,
                tried: self.tried,
                runs,
            }),
            Err(GroupError::Buildpack) => Err(DetectError::NoGroup {
                errored: true,
                tried: self.tried,
                runs,
            }),
            Err(GroupError::Fatal(error)) => Err(error),
        }
    }

    fn detect_order(
        &mut self,
        order: &[OrderGroup],
        done: &[Member],
        next: &[OrderEntry],
        optional: bool,
        depth: usize,
    ) -> GroupResult {
        let mut buildpack_error = false;
        for group in order {
            let elements: Vec<OrderEntry> = group.group.iter().chain(next).cloned().collect();
            match self.detect_group(&elements, done.to_vec(), depth) {
                Err(GroupError::Failed) => {}
                Err(GroupError::Buildpack) => buildpack_error = true,
                other => return other,
            }
        }
        if optional {
            return self.detect_group(next, done.to_vec(), depth);
        }
        Err(if buildpack_error {
            GroupError::Buildpack
        } else {
            GroupError::Failed
        })
    }

    fn detect_group(
        &mut self,
        group: &[OrderEntry],
        mut done: Vec<Member>,
        depth: usize,
    ) -> GroupResult {
        self.groups_tried += 1;
        if self.groups_tried > self.context.limits.groups {
            return Err(GroupError::Fatal(DetectError::TooManyGroups {
                limit: self.context.limits.groups,
            }));
        }
        for (i, entry) in group.iter().enumerate() {
            if done.iter().any(|m| m.id == entry.id) {
                continue;
            }
            let descriptor = self.lookup(entry).map_err(GroupError::Fatal)?;
            if descriptor.is_composite() {
                if depth >= self.context.limits.composite_depth {
                    return Err(GroupError::Fatal(DetectError::TooDeep {
                        id: entry.id.clone(),
                        limit: self.context.limits.composite_depth,
                    }));
                }
                let order = descriptor.order.clone();
                return self.detect_order(
                    &order,
                    &done,
                    &group[i + 1..],
                    entry.optional,
                    depth + 1,
                );
            }
            let member = Member {
                id: entry.id.clone(),
                version: entry.version.clone(),
                optional: entry.optional,
                api: descriptor.api,
                homepage: descriptor.homepage.clone(),
            };
            let targets_match = descriptor.targets.is_empty()
                || descriptor
                    .targets
                    .iter()
                    .any(|t| self.context.target.satisfies(t));
            if !targets_match {
                if entry.optional {
                    tracing::debug!(buildpack = %entry.id, "skip: targets do not match the run image");
                    continue;
                }
                let run = DetectRun {
                    id: member.id.clone(),
                    version: member.version.clone(),
                    outcome: Outcome::Error(RunError::Target {
                        run: format!(
                            "os={} arch={}",
                            self.context.target.os, self.context.target.arch
                        ),
                    }),
                    output: String::new(),
                };
                self.record(member.key(), run);
                done.push(member);
                continue;
            }
            let key = member.key();
            done.push(member);
            if !self.run_index.contains_key(&key) {
                let run = self.run_detect(&descriptor).map_err(GroupError::Fatal)?;
                self.record(key, run);
            }
        }
        self.tried.push(done.iter().map(Member::key).collect());
        let runs: Vec<&DetectRun> = done
            .iter()
            .map(|m| &self.runs[self.run_index[&m.key()]])
            .collect();
        resolve::resolve(&done, &runs, self.context.limits.groups)
    }

    fn record(&mut self, key: String, run: DetectRun) {
        match self.run_index.get(&key) {
            Some(&i) => self.runs[i] = run,
            None => {
                self.run_index.insert(key, self.runs.len());
                self.runs.push(run);
            }
        }
    }

    fn lookup(&mut self, entry: &OrderEntry) -> Result<Descriptor, DetectError> {
        let key = format!("{}@{}", entry.id, entry.version);
        if let Some(descriptor) = self.descriptors.get(&key) {
            return Ok(descriptor.clone());
        }
        let descriptor = Descriptor::lookup(
            &self.context.dirs.buildpacks,
            &entry.id,
            &entry.version,
            &self.context.limits,
        )?;
        self.descriptors.insert(key, descriptor.clone());
        Ok(descriptor)
    }

    /// Runs one buildpack's `bin/detect` with a fresh, empty plan file.
    fn run_detect(&self, descriptor: &Descriptor) -> Result<DetectRun, DetectError> {
        let scratch = self
            .context
            .scratch("plan.")
            .map_err(|source| DetectError::Scratch {
                path: self.context.dirs.scratch.clone(),
                source,
            })?;
        let plan_path = scratch.path().join("plan.toml");
        std::fs::write(&plan_path, "").map_err(|source| DetectError::Scratch {
            path: plan_path.clone(),
            source,
        })?;
        let done = |outcome: Outcome, output: String| DetectRun {
            id: descriptor.id.clone(),
            version: descriptor.version.clone(),
            outcome,
            output,
        };
        let platform = self.context.dirs.platform.as_path();
        let invocation = match self.context.invocation(
            descriptor,
            &self.context.env,
            "detect",
            &[platform, &plan_path],
            &[
                ("CNB_PLATFORM_DIR", platform),
                ("CNB_BUILD_PLAN_PATH", &plan_path),
            ],
        ) {
            Ok(invocation) => invocation,
            Err(error) => return Ok(done(Outcome::Error(RunError::Env(error)), String::new())),
        };
        let mut output = Captured::new(self.context.limits.detect_output_bytes);
        let exit = self.context.executor.run(&invocation, &mut output);
        let text = output.text();
        let outcome = match exit {
            Err(error) => Outcome::Error(RunError::Spawn(error)),
            Ok(Exit::Code(0)) => {
                let plan = read_text(&plan_path, self.context.limits.file_bytes).and_then(|text| {
                    parse_build_plan(
                        text.as_deref().unwrap_or(""),
                        &plan_path,
                        &self.context.limits,
                    )
                });
                match plan {
                    Ok(plan) => Outcome::Pass(plan),
                    Err(error) => Outcome::Error(RunError::Plan(error)),
                }
            }
            Ok(Exit::Code(100)) => Outcome::Fail,
            Ok(other) => Outcome::Error(RunError::Exit(other)),
        };
        Ok(done(outcome, text))
    }
}

/// Where the order is: `<layers>/order.toml` if the platform wrote one, else the
/// builder's (`/cnb/order.toml`).
pub fn order_path(layers: &Path, builder_order: &Path) -> std::path::PathBuf {
    let platform = layers.join("order.toml");
    if platform.exists() {
        platform
    } else {
        builder_order.to_path_buf()
    }
}

#[cfg(test)]
mod tests;
