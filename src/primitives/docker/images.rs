//! Images: tag, pull and push (with progress), list, and prune all but the newest.

use std::collections::HashMap;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptions, ListImagesOptions, PushImageOptions, RemoveImageOptions, TagImageOptions,
};
use futures_util::StreamExt;
use rhai::{Array, Dynamic, Map};

use super::client::{DockerHost, Reply};
use crate::error::Failure;
use crate::exec::docker::Request;
use crate::exec::Stream;
use crate::primitives::validate;

/// `repo:tag` split at the tag's colon (not a registry port's); no tag means `latest`.
pub fn split_reference(reference: &str) -> (String, String) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            reference[..name_start + i].to_string(),
            reference[name_start + i + 1..].to_string(),
        ),
        None => (reference.to_string(), "latest".to_string()),
    }
}

/// Gives `source` (an id or a reference) the name `target`.
pub fn tag(docker: &DockerHost, source: &str, target: &str) -> Result<(), Failure> {
    validate::image_reference(source)?;
    validate::image_reference(target)?;
    let (repo, tag) = split_reference(target);
    let options = TagImageOptions {
        repo: Some(repo),
        tag: Some(tag),
    };
    docker.perform(Request::Tag {
        image: source.to_string(),
        options,
    })?;
    Ok(())
}

/// Sends a `Request::Tag`.
pub fn send_tag(
    docker: &DockerHost,
    source: &str,
    options: TagImageOptions,
) -> Result<Reply, Failure> {
    let target = format!(
        "{}:{}",
        options.repo.as_deref().unwrap_or_default(),
        options.tag.as_deref().unwrap_or_default()
    );
    docker.call(
        &format!("tagging {source} as {target}"),
        docker.api.tag_image(source, Some(options)),
    )?;
    Ok(Reply::Done)
}

/// Prints a pull's or push's progress: one line per layer and state, not every byte count.
struct Progress {
    seen: std::collections::HashSet<String>,
}

impl Progress {
    fn show(&mut self, docker: &DockerHost, id: Option<&str>, status: Option<&str>) {
        let Some(status) = status else { return };
        let line = match id {
            Some(id) => format!("{id}: {status}"),
            None => status.to_string(),
        };
        if self.seen.insert(line.clone()) {
            docker
                .host
                .ctx()
                .printer
                .line(docker.host.name(), Stream::Stdout, &line);
        }
    }
}

fn credentials(auth: Option<Map>) -> Option<DockerCredentials> {
    auth.map(|auth| {
        let get = |k: &str| {
            auth.get(k)
                .map(std::string::ToString::to_string)
                .filter(|v| !v.is_empty())
        };
        DockerCredentials {
            username: get("username"),
            password: get("password"),
            serveraddress: get("server"),
            ..Default::default()
        }
    })
}

/// Pulls `reference` from its registry.
pub fn pull(docker: &DockerHost, reference: &str, auth: Option<Map>) -> Result<(), Failure> {
    validate::image_reference(reference)?;
    let (repo, tag) = split_reference(reference);
    let options = CreateImageOptions {
        from_image: Some(repo),
        tag: Some(tag),
        ..Default::default()
    };
    docker.perform(Request::Pull {
        options,
        auth: credentials(auth),
    })?;
    Ok(())
}

/// Sends a `Request::Pull`, printing its progress.
pub fn send_pull(
    docker: &DockerHost,
    options: CreateImageOptions,
    auth: Option<DockerCredentials>,
) -> Result<Reply, Failure> {
    let reference = format!(
        "{}:{}",
        options.from_image.as_deref().unwrap_or_default(),
        options.tag.as_deref().unwrap_or_default()
    );
    let api = docker.api.clone();
    let mut progress = Progress {
        seen: Default::default(),
    };
    docker.call(&format!("pulling {reference}"), async {
        let mut stream = api.create_image(Some(options), None, auth);
        while let Some(info) = stream.next().await {
            let info = info?;
            progress.show(docker, info.id.as_deref(), info.status.as_deref());
        }
        Ok(())
    })?;
    Ok(Reply::Done)
}

/// Pushes `reference` to its registry.
pub fn push(docker: &DockerHost, reference: &str, auth: Option<Map>) -> Result<(), Failure> {
    validate::image_reference(reference)?;
    let (repo, tag) = split_reference(reference);
    let options = PushImageOptions {
        tag: Some(tag),
        ..Default::default()
    };
    docker.perform(Request::Push {
        image: repo,
        options,
        auth: credentials(auth),
    })?;
    Ok(())
}

/// Sends a `Request::Push`, printing its progress.
pub fn send_push(
    docker: &DockerHost,
    repo: &str,
    options: PushImageOptions,
    auth: Option<DockerCredentials>,
) -> Result<Reply, Failure> {
    let reference = format!("{repo}:{}", options.tag.as_deref().unwrap_or_default());
    let api = docker.api.clone();
    let mut progress = Progress {
        seen: Default::default(),
    };
    docker.call(&format!("pushing {reference}"), async {
        let mut stream = api.push_image(repo, Some(options), auth);
        while let Some(info) = stream.next().await {
            let info = info?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(bollard::errors::Error::DockerStreamError { error });
            }
            progress.show(docker, None, info.status.as_deref());
        }
        Ok(())
    })?;
    Ok(Reply::Done)
}

/// One image as recipes see it.
pub struct ImageRow {
    pub id: String,
    pub tags: Vec<String>,
    pub created: i64,
}

/// The images whose name matches `reference` (all when empty), newest first.
pub fn list(docker: &DockerHost, reference: Option<&str>) -> Result<Vec<ImageRow>, Failure> {
    let filters =
        reference.map(|r| HashMap::from([("reference".to_string(), vec![r.to_string()])]));
    let options = ListImagesOptions {
        filters,
        ..Default::default()
    };
    let rows: Vec<ImageRow> = docker
        .call("listing images", docker.api.list_images(Some(options)))?
        .into_iter()
        .map(|i| ImageRow {
            id: i.id,
            tags: i
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect(),
            created: i.created,
        })
        .collect();
    // The list gives whole seconds; images built within one second are told apart by the
    // nanoseconds of their own creation time.
    let mut keyed: Vec<((i64, u32), ImageRow)> = Vec::new();
    for row in rows {
        let nanos = docker
            .host
            .ctx()
            .wait("inspecting an image", docker.api.inspect_image(&row.id))?
            .ok()
            .and_then(|i| i.created)
            .map_or(0, |c| fraction_nanos(&c));
        keyed.push(((row.created, nanos), row));
    }
    keyed.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.id.cmp(&a.1.id)));
    Ok(keyed.into_iter().map(|(_, row)| row).collect())
}

/// The nanoseconds of an RFC 3339 time such as `2026-11-23T09:04:03.123456789Z`.
fn fraction_nanos(time: &str) -> u32 {
    let Some((_, rest)) = time.split_once('.') else {
        return 0;
    };
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .take(9)
        .collect();
    format!("{digits:0<9}").parse().unwrap_or(0)
}

/// `images` as a Rhai array of maps.
pub fn to_array(rows: Vec<ImageRow>) -> Array {
    rows.into_iter()
        .map(|row| {
            let mut map = Map::new();
            map.insert("id".into(), row.id.into());
            map.insert(
                "tags".into(),
                Dynamic::from_array(row.tags.into_iter().map(Dynamic::from).collect()),
            );
            map.insert("created".into(), Dynamic::from(row.created));
            Dynamic::from_map(map)
        })
        .collect()
}

/// Removes all but the `keep` newest images matching `reference`; returns what it removed.
/// An image that a container still uses is kept, with a warning.
pub fn prune(docker: &DockerHost, reference: &str, keep: usize) -> Result<Vec<String>, Failure> {
    let rows = list(docker, Some(reference))?;
    let mut removed = Vec::new();
    for row in rows.into_iter().skip(keep) {
        // Removing each name removes the image with its last one; by id it would refuse.
        let names = if row.tags.is_empty() {
            vec![row.id.clone()]
        } else {
            row.tags.clone()
        };
        for name in names {
            let request = Request::RemoveImage {
                image: name.clone(),
            };
            match docker.perform(request) {
                Ok(Reply::Missing) => {}
                Ok(_) => removed.push(name),
                // Interrupted: the prune stops there.
                Err(e @ Failure::Interrupted { .. }) => return Err(e),
                Err(e) => docker.host.ctx().printer.warn(&format!("kept {name}: {e}")),
            }
        }
    }
    Ok(removed)
}

/// Sends a `Request::RemoveImage`.
pub fn send_remove(docker: &DockerHost, name: &str) -> Result<Reply, Failure> {
    let result = docker.host.ctx().wait(
        "removing an image",
        docker
            .api
            .remove_image(name, None::<RemoveImageOptions>, None),
    )?;
    docker.reply("removing it", result.map(|_| Reply::Done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_keep_their_nanoseconds() {
        assert_eq!(fraction_nanos("2026-11-23T09:04:03.5Z"), 500_000_000);
        assert_eq!(fraction_nanos("2026-11-23T09:04:03.000000123Z"), 123);
        assert_eq!(fraction_nanos("2026-11-23T09:04:03Z"), 0);
    }

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        let split = |r: &str| split_reference(r);
        assert_eq!(split("app:1.2"), ("app".into(), "1.2".into()));
        assert_eq!(split("app"), ("app".into(), "latest".into()));
        assert_eq!(
            split("127.0.0.1:5000/team/app:abc"),
            ("127.0.0.1:5000/team/app".into(), "abc".into())
        );
        assert_eq!(
            split("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app".into(), "latest".into())
        );
    }
}
