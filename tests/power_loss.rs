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

    let (mut points, mut old, mut new, mut eio, mut unopenable) = (0, 0, 0, 0, 0);
    for k in 0..=ops.len() {
        // The step the crash interrupts: its states before and after.
        let j = (0..steps.len())
            .find(|&j| bounds[j] <= k && k < bounds[j + 1])
            .unwrap_or(steps.len());
        let allowed: Vec<&Vec<u8>> = if j < steps.len() {
            vec![&states[j], &states[j + 1]]
        } else {
            vec![&states[steps.len()]]
        };
        let tears: Vec<usize> = match ops.get(k) {
            Some(Op::Write { data, .. }) if data.len() > 1 => {
                vec![0, 1, data.len() / 2, data.len() - 1]
            }
            _ => vec![0],
        };
        for torn in tears {
            points += 1;
            std::fs::write(&entry, backing::replay(&initial, &ops, ino, k, torn)).unwrap();
            let f = match root.open_file(name, false) {
                Ok(f) => f,
                Err(e) => {
                    assert_eq!(e.to_errno(), libc::EIO, "crash at {k}/{torn}: {e}");
                    unopenable += 1;
                    continue;
                }
            };
            let chunks = allowed.iter().map(|s| s.len()).max().unwrap().div_ceil(C) + 1;
            for i in 0..chunks {
                let mut buf = vec![0u8; C];
                match f.read_at(&mut buf, (i * C) as u64) {
                    Ok(n) => {
                        let got = &buf[..n];
                        if got == slice(allowed[0], i) {
                            old += 1;
                        } else if allowed.len() > 1 && got == slice(allowed[1], i) {
                            new += 1;
                        } else {
                            panic!(
                                "crash at op {k} (step {j}, torn to {torn} bytes): chunk {i} \
                                 reads {n} bytes that are neither its old nor its new bytes"
                            );
                        }
                    }
                    Err(e) => {
                        assert_eq!(
                            e.to_errno(),
                            libc::EIO,
                            "crash at {k}/{torn}, chunk {i}: {e}"
                        );
                        eio += 1;
                    }
                }
            }
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
