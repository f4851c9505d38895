//! Ordinary programs in the mount: cp -a, tar, mv, git, sqlite3; then the
//! vault, unmounted, is consistent and reads back through the library.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::mount::Mounted;
use common::pattern;

fn sh(dir: &Path, script: &str) {
    let o = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh");
    assert!(
        o.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn make_tree(root: &Path) {
    for d in 0..5 {
        let dir = root.join(format!("dir{d}/sub"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            fs::write(
                dir.join(format!("file{f}.txt")),
                pattern(f * 997 + d, (d * 100 + f) as u64),
            )
            .unwrap();
        }
    }
    std::os::unix::fs::symlink("dir0/sub/file1.txt", root.join("link")).unwrap();
}

#[test]
fn cp_tar_mv_between_disk_and_mount() {
    let mut m = Mounted::new(&[]);
    let src = m.tmp.path().join("src");
    make_tree(&src);
    let mnt = m.mnt.clone();
    sh(
        &mnt,
        &format!(
            "cp -a {}/. copy/ 2>/dev/null || (mkdir copy && cp -a {}/. copy/)",
            src.display(),
            src.display()
        ),
    );
    sh(
        &mnt,
        &format!("diff -r --no-dereference {} copy", src.display()),
    );
    sh(
        &mnt,
        "tar cf ../t.tar copy && mkdir untar && tar xf ../t.tar -C untar && diff -r --no-dereference copy untar/copy",
    );
    sh(
        &mnt,
        "mkdir -p x/y && mv copy/dir1 x/y/ && mv untar x/ && test -f x/y/dir1/sub/file3.txt && test -L x/untar/copy/link",
    );
    sh(&mnt, "rm -rf x/untar && test ! -e x/untar");
    m.umount();
    // The vault, unmounted, reads back through the library.
    let v =
        sealfs::vault::Vault::unlock(&m.vault, sealfs::vault::Secret::Password(b"test password"))
            .unwrap();
    let d = v.open_dir(Path::new("x/y/dir1/sub")).unwrap();
    let f = d
        .open_file(std::ffi::OsStr::new("file7.txt"), false)
        .unwrap();
    let mut buf = vec![0u8; f.size() as usize];
    f.read_at(&mut buf, 0).unwrap();
    assert_eq!(buf, pattern(7 * 997 + 1, 107));
    assert!(v.open_dir(Path::new("copy/dir1")).is_err());
}

#[test]
fn git_init_add_commit_and_log() {
    let m = Mounted::new(&[]);
    let repo = m.path("repo");
    fs::create_dir(&repo).unwrap();
    sh(
        &repo,
        "git init -q . && git config user.email t@example.com && git config user.name T && \
         for i in 1 2 3; do echo line$i > f$i.txt; done && git add . && git commit -qm first && \
         echo more >> f1.txt && git commit -qam second && git log --oneline | wc -l | grep -q 2 && \
         git fsck --strict 2>&1 | (! grep -i error) && git gc -q && git status --porcelain | (! grep .)",
    );
}

#[test]
fn sqlite_database_with_journal() {
    if Command::new("sqlite3").arg("-version").output().is_err() {
        panic!("sqlite3 is required (scripts/test.sh installs it)");
    }
    let m = Mounted::new(&[]);
    sh(
        &m.mnt,
        "sqlite3 db.sqlite 'create table t(a integer primary key, b text);' && \
         for i in $(seq 1 50); do echo \"insert into t(b) values (hex(randomblob(300)));\"; done | sqlite3 db.sqlite && \
         sqlite3 db.sqlite 'pragma journal_mode=wal; insert into t(b) values (1); pragma integrity_check;' | grep -q ok && \
         test $(sqlite3 db.sqlite 'select count(*) from t') = 51",
    );
}

#[test]
fn editor_style_save_by_temp_and_rename() {
    let mut m = Mounted::new(&[]);
    for round in 0..20 {
        let tmp = m.path(".doc.txt.swp");
        fs::write(&tmp, format!("version {round}")).unwrap();
        fs::rename(&tmp, m.path("doc.txt")).unwrap();
    }
    m.remount();
    assert_eq!(fs::read_to_string(m.path("doc.txt")).unwrap(), "version 19");
    assert_eq!(fs::read_dir(&m.mnt).unwrap().count(), 1);
}
