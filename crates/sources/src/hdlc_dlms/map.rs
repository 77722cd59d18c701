//! From decoded DLMS pushes to readings: the same mapping as `mbus-dlms` (see
//! [`crate::mbus_dlms::map`]), since both carry the same APDUs over different link layers.
//! This module adds what only HDLC needs: the link-layer errors and the `layout` names.

use proto_dlms::Layout;
use smart_meter_core::FrameError;

pub use crate::mbus_dlms::map::{decode, dlms_error, link_stage, meter_time, reading, stage};

/// An HDLC link-layer error as a frame error.
pub fn link_error(e: &proto_hdlc::Error) -> FrameError {
    FrameError::new(link_stage(e.kind()), e.to_string())
}

/// The value of the `layout` key that means "recognise the layout from the frame".
pub const AUTO: &str = "auto";

/// The layout a `layout` value names: `Ok(None)` for automatic recognition (`auto` or no
/// key), `Err` with the valid names for anything else.
pub fn layout(name: Option<&str>) -> Result<Option<Layout>, String> {
    match name {
        None | Some(AUTO) => Ok(None),
        Some(n) => Layout::from_name(n).map(Some).ok_or_else(|| {
            let names: Vec<&str> = Layout::ALL.iter().map(|l| l.name()).collect();
            format!(
                "unknown layout {n:?}: expected one of {}, or \"{AUTO}\"",
                names.join(", ")
            )
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use smart_meter_core::Stage;

    #[test]
    fn layout_names_are_the_documented_ones() {
        assert_eq!(layout(None), Ok(None));
        assert_eq!(layout(Some("auto")), Ok(None));
        assert_eq!(layout(Some("wiener-netze")), Ok(Some(Layout::WienerNetze)));
        assert_eq!(
            layout(Some("netz-burgenland")),
            Ok(Some(Layout::NetzBurgenland))
        );
        let e = layout(Some("wiener_netze")).unwrap_err();
        assert!(e.contains("wiener-netze") && e.contains("shrdzm-12"), "{e}");
    }

    #[test]
    fn link_errors_keep_their_stage() {
        let e = link_error(&proto_hdlc::Error::BadFcs {
            offset: 7,
            expected: 0x1234,
            actual: 0x4321,
        });
        assert_eq!(e.stage, Stage::Checksum);
        assert!(e.detail.contains("offset 7") && e.detail.contains("1234"));
    }
}
