//! Power loss on the data path. A workload of overwrites, appends past the
//! end, shrinking and growing truncates runs on a sealed file whose backing
//! records every write and length change (`vault::backing`). Then, for
//! every crash point of that recording, the file is rebuilt as the disk
//! would hold it: every change before the point, the write at the point
//! torn (its first byte, its first half, all but its last byte), nothing
//! after. Each chunk of each rebuilt file must read as its bytes before the
//! interrupted step, its bytes after it, or EIO: never anything else, and
//! never a panic.

mod common;

use std::ffi::OsStr;

use sealfs::vault::backing::{self, Op};

const C: usize = 4096;

/// The plaintext after each step of the workload.
fn apply(model: &mut Vec<u8>, step: &Step) {
    match *step {
        Step::Write(off, ref data) => {
            if model.len() < off + data.len() {
                model.resize(off + data.len(), 0);
            }
            model[off..off + data.len()].copy_from_slice(data);
        }
        Step::SetLen(n) => model.resize(n, 0),
        Step::Sync => {}
    }
}

enum Step {
    Write(usize, Vec<u8>),
    SetLen(usize),
    Sync,
}

fn slice(state: &[u8], i: usize) -> &[u8] {
    let start = (i * C).min(state.len());
    let end = ((i + 1) * C).min(state.len());
    &state[start..end]
}

#[test]
fn every_crash_point_leaves_each_chunk_old_new_or_eio() {
    let (_tmp, path, v) = common::new_vault(C as u32);
    let root = v.root().unwrap();
    let name = OsStr::new("f");
    let initial_plain = common::pattern(3 * C + 1000, 1);
    {
        let (mut f, _) = root.create_file(name, 0o644, true).unwrap();
        f.write_at(&initial_plain, 0).unwrap();
        f.sync(false).unwrap();
    }
    let entry = path.join(root.disk_name(name).unwrap().entry());
    let initial = std::fs::read(&entry).unwrap();
    let ino = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&entry).unwrap().ino()
    };

    let steps = vec![
        Step::Write(5000, common::pattern(3000, 2)),
        Step::Write(14_000, common::pattern(9000, 3)),
        Step::SetLen(7000),
        Step::Write(6950, common::pattern(200, 4)),
        Step::SetLen(30_000),
        Step::Write(0, common::pattern(C + 10, 5)),
        // Larger than one write batch (1 MiB): several writes for one step.
        Step::Write(8000, common::pattern(2_500_000, 6)),
        Step::SetLen(1_000_000),
        Step::Write(999_000, common::pattern(5000, 7)),
        Step::Sync,
    ];
    let mut states = vec![initial_plain.clone()];
    // The recorded operations each step made: [bounds[j], bounds[j + 1]).
    let mut bounds = vec![0];
    backing::start_recording();
    {
        let mut f = root.open_file(name, true).unwrap();
        for step in &steps {
            match step {
                Step::Write(off, data) => {
                    f.write_at(data, *off as u64).unwrap();
                }
                Step::SetLen(n) => f.set_len(*n as u64).unwrap(),
                Step::Sync => f.sync(false).unwrap(),
            }
            let mut next = states.last().unwrap().clone();
            apply(&mut next, step);
            states.push(next);
            bounds.push(backing::recorded());
        }
    }
    let ops = backing::stop_recording();
    let ours = |o: &Op| match o {
        Op::Write { ino: n, .. } | Op::SetLen { ino: n, .. } | Op::Sync { ino: n } => *n == ino,
    };
    assert!(ops.iter().all(ours), "another file was written: {ops:?}");
    assert!(ops.len() >= steps.len(), "{} operations", ops.len());
    // The final state, replayed whole, is the file as written.
    let last = backing::replay(&initial, &ops, ino, ops.len(), 0);
    assert_eq!(last, std::fs::read(&entry).unwrap());

    // The step each recorded operation belongs to.
    let step_of = |k: usize| {
        (0..steps.len())
            .find(|&j| bounds[j] <= k && k < bounds[j + 1])
            .unwrap_or(steps.len())
    };
    let (mut points, mut old, mut new, mut eio, mut unopenable) = (0, 0, 0, 0, 0);
    let mut check = |image: Vec<u8>, allowed: &[Vec<u8>], what: &str| {
        points += 1;
        std::fs::write(&entry, image).unwrap();
        let f = match root.open_file(name, false) {
            Ok(f) => f,
            Err(e) => {
                assert!(
                    matches!(e, sealfs::Error::Corrupt(_)),
                    "{what}: refused at open with {e}, not as damage"
                );
                unopenable += 1;
                return;
            }
        };
        let lens: Vec<usize> = allowed.iter().map(|s| s.len()).collect();
        assert!(
            lens.contains(&(f.size() as usize)),
            "{what}: size {} is none of {lens:?}",
            f.size()
        );
        let chunks = lens.iter().max().unwrap().div_ceil(C) + 1;
        for i in 0..chunks {
            let mut buf = vec![0u8; C];
            match f.read_at(&mut buf, (i * C) as u64) {
                Ok(n) => {
                    let got = &buf[..n];
                    match allowed.iter().position(|s| got == slice(s, i)) {
                        Some(0) => old += 1,
                        Some(_) => new += 1,
                        None => panic!(
                            "{what}: chunk {i} reads {n} bytes that are none of its \
                             {} allowed versions",
                            allowed.len()
                        ),
                    }
                }
                Err(e) => {
                    assert!(
                        matches!(e, sealfs::Error::Corrupt(_)),
                        "{what}, chunk {i}: {e}"
                    );
                    eio += 1;
                }
            }
        }
    };
    for k in 0..=ops.len() {
        // A crash at op k: the step it interrupts, its states before and after.
        let j = step_of(k);
        let allowed: Vec<Vec<u8>> = states[j..=(j + 1).min(steps.len())].to_vec();
        let tears: Vec<usize> = match ops.get(k) {
            // One byte, one 512-byte sector, half, all but one byte.
            Some(Op::Write { data, .. }) if data.len() > 1 => {
                vec![
                    0,
                    1,
                    512.min(data.len() - 1),
                    data.len() / 2,
                    data.len() - 1,
                ]
            }
            _ => vec![0],
        };
        for torn in tears {
            let image = backing::replay(&initial, &ops, ino, k, torn);
            check(
                image,
                &allowed,
                &format!("crash at op {k} (step {j}), torn to {torn}"),
            );
        }
        // Power loss rather than a process crash: nothing was synced before
        // the final step, so any one earlier change may be missing from the
        // disk while later ones reached it. Its chunks may then hold any
        // version from the dropped change's step on.
        for d in 0..k {
            if matches!(ops[d], Op::Sync { .. }) {
                continue;
            }
            let mut rest = ops[..k].to_vec();
            rest.remove(d);
            let image = backing::replay(&initial, &rest, ino, rest.len(), 0);
            let from = step_of(d);
            let allowed: Vec<Vec<u8>> = states[from..=(j + 1).min(steps.len())].to_vec();
            check(image, &allowed, &format!("crash at op {k} without op {d}"));
        }
    }
    eprintln!(
        "{} recorded operations, {points} crash images: chunk reads old {old}, new {new}, \
         EIO {eio}; {unopenable} images refused at open (EIO)",
        ops.len()
    );
    // The checks above ran on real reads, not just on refusals.
    assert!(old > 0 && new > 0 && eio > 0, "{old} {new} {eio}");
}
