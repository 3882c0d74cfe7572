//! The base images of a build, read from the head of its tar context, so the build can be
//! placed on a node that already has them (`build`). Only what the head holds is read: the
//! context streams on to the engine untouched, and a Dockerfile that is not among the
//! first entries (or a compressed context) only means no preference.
//!
//! The tar reading is the little a build context needs: ustar headers (`name`, `prefix`,
//! `size`, type), GNU long names and PAX `path` records. The Dockerfile reading takes the
//! `FROM` lines: an image a later stage names by its stage alias, `scratch`, and a name
//! built from an `ARG` are not base images to look for.

/// What the head of a context says about the Dockerfile.
#[derive(Debug, PartialEq)]
pub enum Scan {
    /// The Dockerfile's text.
    Found(String),
    /// Not in this context (the archive ended, or it is not a plain tar).
    Absent,
    /// The head ends before the Dockerfile or the end of the archive.
    NeedMore,
}

const BLOCK: usize = 512;

fn field(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn octal(bytes: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(field(bytes)).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(text, 8).ok()
}

/// `./Dockerfile` and `Dockerfile` are the same entry.
fn normalize(name: &str) -> &str {
    name.trim_start_matches("./").trim_end_matches('/')
}

/// The `path` record of a PAX extended header.
fn pax_path(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    text.lines()
        .filter_map(|rec| rec.split_once(' ').map(|(_, kv)| kv))
        .find_map(|kv| kv.strip_prefix("path=").map(str::to_string))
}

/// Looks for `dockerfile` in the tar archive whose first bytes are `head`.
pub fn find_dockerfile(head: &[u8], dockerfile: &str) -> Scan {
    let wanted = normalize(dockerfile);
    let mut at = 0;
    let mut long_name: Option<String> = None;
    loop {
        let Some(header) = head.get(at..at + BLOCK) else {
            return Scan::NeedMore;
        };
        if header.iter().all(|&b| b == 0) {
            return Scan::Absent;
        }
        let is_ustar = header.get(257..262) == Some(b"ustar");
        let Some(size) = octal(&header[124..136]) else {
            return Scan::Absent;
        };
        if !is_ustar && at == 0 {
            // Not a plain tar (gzip, say): no preference.
            return Scan::Absent;
        }
        let data_at = at + BLOCK;
        let next = data_at + size.div_ceil(BLOCK) * BLOCK;
        let kind = header[156];
        let data = head.get(data_at..data_at + size);
        match kind {
            b'L' | b'x' => {
                let Some(data) = data else {
                    return Scan::NeedMore;
                };
                long_name = if kind == b'L' {
                    Some(String::from_utf8_lossy(field(data)).into_owned())
                } else {
                    pax_path(data)
                };
            }
            _ => {
                let name = long_name.take().unwrap_or_else(|| {
                    let name = String::from_utf8_lossy(field(&header[0..100])).into_owned();
                    let prefix = String::from_utf8_lossy(field(&header[345..500])).into_owned();
                    if is_ustar && !prefix.is_empty() {
                        format!("{prefix}/{name}")
                    } else {
                        name
                    }
                });
                if (kind == b'0' || kind == 0) && normalize(&name) == wanted {
                    let Some(data) = data else {
                        return Scan::NeedMore;
                    };
                    return Scan::Found(String::from_utf8_lossy(data).into_owned());
                }
            }
        }
        at = next;
    }
}

/// The images the Dockerfile's stages start from, in order, without stage aliases,
/// `scratch`, or names an `ARG` makes.
pub fn base_images(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut stages: Vec<String> = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    for line in joined.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
        let Some(image) = rest.first() else { continue };
        let lower = image.to_lowercase();
        let known = lower == "scratch" || image.contains('$') || stages.contains(&lower);
        if !known && !bases.iter().any(|b| *b == *image) {
            bases.push(image.to_string());
        }
        if let [_, as_kw, alias, ..] = rest.as_slice() {
            if as_kw.eq_ignore_ascii_case("AS") {
                stages.push(alias.to_lowercase());
            }
        }
    }
    bases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: usize, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}");
        h[124..135].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h
    }

    fn entry(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = header(name, data.len(), b'0');
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    #[test]
    fn the_dockerfile_is_found_after_other_entries() {
        let mut tar = entry("a.txt", b"hello");
        tar.extend(entry("./Dockerfile", b"FROM busybox\n"));
        tar.extend(vec![0u8; 2 * BLOCK]);
        assert_eq!(
            find_dockerfile(&tar, "Dockerfile"),
            Scan::Found("FROM busybox\n".into())
        );
        assert_eq!(find_dockerfile(&tar, "other/Dockerfile"), Scan::Absent);
        assert_eq!(find_dockerfile(&tar[..700], "Dockerfile"), Scan::NeedMore);
        assert_eq!(
            find_dockerfile(&[0x1f, 0x8b, 8, 0], "Dockerfile"),
            Scan::NeedMore
        );
        let mut gz = vec![0x1f, 0x8b];
        gz.resize(BLOCK, 1);
        assert_eq!(find_dockerfile(&gz, "Dockerfile"), Scan::Absent);
    }

    #[test]
    fn long_names_are_followed() {
        let long = format!("{}/Dockerfile", "d".repeat(120));
        let mut tar = entry("././@LongLink", format!("{long}\0").as_bytes());
        tar[156] = b'L';
        tar.extend(entry("truncated", b"FROM alpine\n"));
        assert_eq!(
            find_dockerfile(&tar, &long),
            Scan::Found("FROM alpine\n".into())
        );
    }

    #[test]
    fn base_images_skip_stages_scratch_and_args() {
        let df = "ARG V=1\nFROM --platform=linux/amd64 golang:1.22 AS build\nRUN x \\\n  y\nfrom build as test\nFROM scratch\nFROM ${BASE}\nFROM busybox\nCOPY --from=build /a /a\n";
        assert_eq!(base_images(df), ["golang:1.22", "busybox"]);
    }
}
