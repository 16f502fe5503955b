//! `order.toml` (the groups a platform offers, also a composite buildpack's `[[order]]`),
//! `system.toml` (buildpacks put before and after every group, Platform API 0.15) and
//! `group.toml` (the group detection chose).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{bounded, parse, read_required, to_toml, write_toml, FormatError, Problem};
use crate::api::Api;
use crate::id::{check_version, BuildpackId};
use crate::read::Limits;

/// One `[[order]]` entry: buildpacks tried together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct OrderGroup {
    #[serde(default)]
    pub group: Vec<OrderEntry>,
}

/// A buildpack reference in an order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct OrderEntry {
    pub id: BuildpackId,
    pub version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
struct RawOrder {
    #[serde(default)]
    order: Vec<OrderGroup>,
    #[serde(default, skip_serializing)]
    order_extensions: Option<toml::Value>,
}

/// Parses `order.toml`. Image extensions (`[[order-extensions]]`) need a Dockerfile
/// applier, which a Docker-free platform does not have: they are refused, not ignored.
pub fn parse_order(
    text: &str,
    path: &Path,
    limits: &Limits,
) -> Result<Vec<OrderGroup>, FormatError> {
    let raw: RawOrder = parse(text, path)?;
    if raw.order_extensions.is_some() {
        return Err(FormatError::invalid(
            path,
            "order-extensions",
            Problem::Unsupported("image extensions need a Dockerfile builder"),
        ));
    }
    check_groups(&raw.order, path, "order", limits)?;
    Ok(raw.order)
}

/// Reads `order.toml` at `path`.
pub fn read_order(path: &Path, limits: &Limits) -> Result<Vec<OrderGroup>, FormatError> {
    let text = read_required(path, limits.file_bytes)?;
    parse_order(&text, path, limits)
}

/// Writes `order.toml` at `path` (a platform's own order, `<layers>/order.toml`, which
/// the detector reads instead of the builder's).
pub fn write_order(path: &Path, order: &[OrderGroup]) -> Result<(), FormatError> {
    write_toml(
        path,
        &RawOrder {
            order: order.to_vec(),
            order_extensions: None,
        },
    )
}

/// Checks the groups of an order: none empty, versions usable as paths, bounded.
pub(crate) fn check_groups(
    groups: &[OrderGroup],
    path: &Path,
    key: &str,
    limits: &Limits,
) -> Result<(), FormatError> {
    bounded(path, key, groups.len(), limits.groups)?;
    for (i, group) in groups.iter().enumerate() {
        if group.group.is_empty() {
            return Err(FormatError::invalid(
                path,
                format!("{key}[{i}].group"),
                Problem::Empty,
            ));
        }
        bounded(
            path,
            &format!("{key}[{i}].group"),
            group.group.len(),
            limits.plan_entries,
        )?;
        for (j, entry) in group.group.iter().enumerate() {
            check_version(&entry.version).map_err(|e| {
                FormatError::invalid(path, format!("{key}[{i}].group[{j}].version"), e)
            })?;
        }
    }
    Ok(())
}

/// `system.toml`: buildpacks to put at the start (`pre`) and the end (`post`) of every
/// group of the order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct System {
    pub pre: Vec<OrderEntry>,
    pub post: Vec<OrderEntry>,
}

#[derive(Deserialize)]
struct RawSystemFile {
    #[serde(default)]
    system: RawSystem,
}

#[derive(Deserialize, Default)]
struct RawSystem {
    #[serde(default)]
    pre: RawSystemBuildpacks,
    #[serde(default)]
    post: RawSystemBuildpacks,
}

#[derive(Deserialize, Default)]
struct RawSystemBuildpacks {
    #[serde(default)]
    buildpacks: Vec<OrderEntry>,
}

impl System {
    /// Parses `system.toml`.
    pub fn parse(text: &str, path: &Path, limits: &Limits) -> Result<System, FormatError> {
        let raw: RawSystemFile = parse(text, path)?;
        let system = System {
            pre: raw.system.pre.buildpacks,
            post: raw.system.post.buildpacks,
        };
        for (key, entries) in [
            ("system.pre.buildpacks", &system.pre),
            ("system.post.buildpacks", &system.post),
        ] {
            bounded(path, key, entries.len(), limits.plan_entries)?;
            for (i, entry) in entries.iter().enumerate() {
                check_version(&entry.version)
                    .map_err(|e| FormatError::invalid(path, format!("{key}[{i}].version"), e))?;
            }
        }
        Ok(system)
    }

    /// Reads `system.toml` at `path`; none there is no system buildpacks.
    pub fn read(path: &Path, limits: &Limits) -> Result<System, FormatError> {
        match crate::read::read_text(path, limits.file_bytes)? {
            Some(text) => System::parse(&text, path, limits),
            None => Ok(System::default()),
        }
    }

    /// `order` with the system buildpacks around each group, less those already in the
    /// group (by id), as the reference lifecycle merges them. Unlike the reference, which
    /// drops it, an entry's `optional` is kept: the platform spec gives `system.toml` one.
    pub fn apply(&self, order: &[OrderGroup]) -> Vec<OrderGroup> {
        order
            .iter()
            .map(|group| {
                let absent = |entry: &&OrderEntry| !group.group.iter().any(|g| g.id == entry.id);
                let pre = self.pre.iter().filter(absent).cloned();
                let post = self.post.iter().filter(absent).cloned();
                OrderGroup {
                    group: pre.chain(group.group.iter().cloned()).chain(post).collect(),
                }
            })
            .collect()
    }
}

/// `group.toml`: the buildpacks that passed detection, in order, with their API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub group: Vec<GroupMember>,
}

/// One buildpack of the chosen group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub id: BuildpackId,
    pub version: String,
    pub api: Api,
    pub homepage: Option<String>,
}

impl GroupMember {
    /// `id@version`, as logs name a buildpack.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

#[derive(Deserialize, Serialize)]
struct RawGroup {
    #[serde(default)]
    group: Vec<RawMember>,
}

/// A group member as TOML writes it (`group.toml`, and `metadata.toml`'s `[[buildpacks]]`).
#[derive(Deserialize, Serialize)]
pub(crate) struct RawMember {
    id: BuildpackId,
    version: String,
    api: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    homepage: Option<String>,
}

/// `members` as TOML writes them.
pub(crate) fn raw_members(members: &[GroupMember]) -> Vec<RawMember> {
    members
        .iter()
        .map(|m| RawMember {
            id: m.id.clone(),
            version: m.version.clone(),
            api: m.api.to_string(),
            homepage: m.homepage.clone(),
        })
        .collect()
}

/// The members read from the array `key` of `path`, checked and bounded.
pub(crate) fn members_from_raw(
    raw: Vec<RawMember>,
    path: &Path,
    key: &str,
    limits: &Limits,
) -> Result<Vec<GroupMember>, FormatError> {
    bounded(path, key, raw.len(), limits.plan_entries)?;
    let mut members = Vec::with_capacity(raw.len());
    for (i, member) in raw.into_iter().enumerate() {
        check_version(&member.version)
            .map_err(|e| FormatError::invalid(path, format!("{key}[{i}].version"), e))?;
        let api = Api::parse_buildpack(&member.api)
            .map_err(|e| FormatError::invalid(path, format!("{key}[{i}].api"), e))?;
        members.push(GroupMember {
            id: member.id,
            version: member.version,
            api,
            homepage: member.homepage,
        });
    }
    Ok(members)
}

impl Group {
    /// The text of `group.toml`.
    pub fn to_toml(&self, path: &Path) -> Result<String, FormatError> {
        to_toml(path, &self.raw())
    }

    /// Writes `group.toml` at `path`.
    pub fn write(&self, path: &Path) -> Result<(), FormatError> {
        write_toml(path, &self.raw())
    }

    fn raw(&self) -> RawGroup {
        RawGroup {
            group: raw_members(&self.group),
        }
    }

    /// Parses `group.toml`.
    pub fn parse(text: &str, path: &Path, limits: &Limits) -> Result<Group, FormatError> {
        let raw: RawGroup = parse(text, path)?;
        let group = members_from_raw(raw.group, path, "group", limits)?;
        Ok(Group { group })
    }

    /// Reads `group.toml` at `path`.
    pub fn read(path: &Path, limits: &Limits) -> Result<Group, FormatError> {
        let text = read_required(path, limits.file_bytes)?;
        Group::parse(&text, path, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_order_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.toml");
        let entry = |id: &str, optional| OrderEntry {
            id: BuildpackId::parse(id).unwrap(),
            version: "1.2.3".into(),
            optional,
        };
        let order = vec![OrderGroup {
            group: vec![entry("test/a", false), entry("test/b", true)],
        }];
        write_order(&path, &order).unwrap();
        assert_eq!(read_order(&path, &Limits::DEFAULT).unwrap(), order);
    }

    const PATH: &str = "/cnb/order.toml";

    #[test]
    fn an_order_with_optional_entries() {
        let order = parse_order(
            r#"[[order]]
[[order.group]]
id = "test/httpd"
version = "0.0.1"
[[order.group]]
id = "test/web-meta"
version = "0.0.1"
optional = true

[[order]]
[[order.group]]
id = "test/procfile"
version = "0.0.1"
"#,
            Path::new(PATH),
            &Limits::DEFAULT,
        )
        .unwrap();
        assert_eq!(order.len(), 2);
        assert!(order[0].group[1].optional);
        assert_eq!(order[1].group[0].id.as_str(), "test/procfile");
    }

    #[test]
    fn bad_orders_are_refused_with_the_key() {
        let limits = Limits::DEFAULT;
        let error = parse_order(
            "[[order]]\n[[order.group]]\nid = \"sbom\"\nversion = \"1\"\n",
            Path::new(PATH),
            &limits,
        )
        .unwrap_err();
        assert!(
            matches!(error, FormatError::Parse { .. }) && error.to_string().contains("reserved"),
            "{error}"
        );
        let error = parse_order("[[order]]\ngroup = []\n", Path::new(PATH), &limits).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/cnb/order.toml: `order[0].group` is empty"
        );
        let error = parse_order(
            "[[order]]\n[[order.group]]\nid = \"a\"\nversion = \"../x\"\n",
            Path::new(PATH),
            &limits,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("`order[0].group[0].version`"),
            "{error}"
        );
        let error = parse_order(
            "[[order-extensions]]\n[[order-extensions.group]]\nid = \"e\"\nversion = \"1\"\n",
            Path::new(PATH),
            &limits,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`order-extensions` is not supported"),
            "{error}"
        );
        let tight = Limits {
            groups: 1,
            ..Limits::DEFAULT
        };
        let two = "[[order]]\n[[order.group]]\nid = \"a\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid = \"b\"\nversion = \"1\"\n";
        let error = parse_order(two, Path::new(PATH), &tight).unwrap_err();
        assert!(error.to_string().contains("more than 1 entries"), "{error}");
    }

    #[test]
    fn group_toml_round_trips_with_api_and_without_optional() {
        let group = Group {
            group: vec![
                GroupMember {
                    id: BuildpackId::parse("test/httpd").unwrap(),
                    version: "0.0.1".into(),
                    api: Api::new(0, 10),
                    homepage: Some("https://example.test".into()),
                },
                GroupMember {
                    id: BuildpackId::parse("test/procfile").unwrap(),
                    version: "0.0.1".into(),
                    api: Api::new(0, 11),
                    homepage: None,
                },
            ],
        };
        let path = Path::new("/layers/group.toml");
        let text = group.to_toml(path).unwrap();
        assert_eq!(
            text,
            "[[group]]\nid = \"test/httpd\"\nversion = \"0.0.1\"\napi = \"0.10\"\nhomepage = \"https://example.test\"\n\n\
             [[group]]\nid = \"test/procfile\"\nversion = \"0.0.1\"\napi = \"0.11\"\n"
        );
        assert_eq!(Group::parse(&text, path, &Limits::DEFAULT).unwrap(), group);
    }

    #[test]
    fn system_buildpacks_go_around_every_group_unless_already_there() {
        let path = Path::new("/cnb/system.toml");
        let system = System::parse(
            r#"[[system.pre.buildpacks]]
id = "sys/pre"
version = "1"
[[system.post.buildpacks]]
id = "sys/post"
version = "1"
optional = true
[[system.post.buildpacks]]
id = "app/b"
version = "9"
"#,
            path,
            &Limits::DEFAULT,
        )
        .unwrap();
        assert!(system.post[0].optional && !system.pre[0].optional);
        let order = parse_order(
            "[[order]]\n[[order.group]]\nid = \"app/a\"\nversion = \"1\"\n\
             [[order]]\n[[order.group]]\nid = \"app/b\"\nversion = \"1\"\n[[order.group]]\nid = \"sys/pre\"\nversion = \"2\"\n",
            Path::new(PATH),
            &Limits::DEFAULT,
        )
        .unwrap();
        let merged = system.apply(&order);
        let ids = |g: &OrderGroup| {
            g.group
                .iter()
                .map(|e| format!("{}@{}", e.id, e.version))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&merged[0]),
            ["sys/pre@1", "app/a@1", "sys/post@1", "app/b@9"]
        );
        assert_eq!(ids(&merged[1]), ["app/b@1", "sys/pre@2", "sys/post@1"]);
        let none = System::read(Path::new("/nonexistent/system.toml"), &Limits::DEFAULT).unwrap();
        assert_eq!(none.apply(&order), order);
        let error = System::parse(
            "[[system.pre.buildpacks]]\nid = \"a\"\nversion = \"..\"\n",
            path,
            &Limits::DEFAULT,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`system.pre.buildpacks[0].version`"),
            "{error}"
        );
    }
}
