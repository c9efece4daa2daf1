//! `deploy/kubernetes/` and the `Dockerfile`: the manifests parse as YAML and say what a
//! sharded run needs (an Indexed Job whose index becomes `--shard`, a shared start time, a
//! results volume, a merge); the profile they carry is a valid profile; the image is built in
//! stages and runs as a non-root user. (`kubernetes-validate deploy/kubernetes/*.yaml` checks
//! them against Kubernetes' own schemas; see docs/distributed.md.)

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use crate::common::{resilbench, stderr};

fn docs(name: &str) -> Vec<Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_shards_job_is_indexed_and_each_index_is_a_shard() {
    let job = &docs("shards-job.yaml")[0];
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().unwrap();
    assert_eq!(spec["parallelism"].as_i64(), Some(n));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let c = &pod["containers"][0];
    let args = strings(&c["args"]);
    let after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag}"));
        args[i + 1].clone()
    };
    assert_eq!(args[0], "run");
    assert_eq!(after("--shard"), format!("$(SHARD_INDEX)/{n}"));
    assert_eq!(after("--start-at"), "$(START_AT)");
    assert!(after("--out").starts_with("/results/"));
    let env = c["env"].as_vec().unwrap();
    let index = env
        .iter()
        .find(|e| e["name"].as_str() == Some("SHARD_INDEX"))
        .unwrap();
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
    );
    let volumes = pod["volumes"].as_vec().unwrap();
    assert!(volumes.iter().any(|v| v["persistentVolumeClaim"]["claimName"].as_str()
        == Some("resilbench-results")));

    // The merge reads every shard's folder.
    let merge = &docs("merge-job.yaml")[0];
    let margs = strings(&merge["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert_eq!(margs[0], "merge");
    for k in 0..n {
        assert!(margs.contains(&format!("/results/shard-{k}")), "{margs:?}");
    }
}

#[test]
fn the_configmap_carries_a_valid_profile_and_a_start_time() {
    let cm = &docs("profile.yaml")[0];
    assert_eq!(cm["kind"].as_str(), Some("ConfigMap"));
    let data = &cm["data"];
    let at = data["start-at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.contains('T'), "{at}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        data["profile.toml"].as_str().unwrap(),
    )
    .unwrap();
    let out = resilbench(&["validate", "p.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    // The same start time is accepted by the command line.
    let out = resilbench(
        &[
            "run",
            "p.toml",
            "--clock",
            "virtual",
            "--start-at",
            at,
            "--quiet",
        ],
        dir.path(),
    );
    assert!(
        stderr(&out).contains("--start-at is a wall-clock time"),
        "{}",
        stderr(&out)
    );
    for name in ["results-volume.yaml", "target.yaml"] {
        assert!(!docs(name).is_empty());
    }
}

#[test]
fn the_image_is_multi_stage_and_runs_as_non_root() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(text.contains("COPY --from=build"));
    assert!(text.contains("cargo build --release --locked"));
    let user = text.lines().rfind(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
}
