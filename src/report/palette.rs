//! One colour per strategy, the same in every chart and table of a report.
//!
//! The Okabe–Ito palette (Okabe & Ito, "Color Universal Design", 2008): eight colours that
//! stay distinct for the common forms of colour blindness. Its yellow is replaced by a dark
//! grey, which reads better as a thin line on white. Beyond eight strategies colours repeat,
//! and the legend's order tells them apart.

use plotters::style::RGBColor;

/// The palette, in the order strategies get their colours.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x59, 0x59, 0x59), // dark grey (in place of yellow)
    RGBColor(0x00, 0x00, 0x00), // black
];

/// The colour of the strategy at `index` (profile order).
pub fn colour(index: usize) -> RGBColor {
    OKABE_ITO[index % OKABE_ITO.len()]
}

/// The same colour as CSS (`#0072b2`).
pub fn css(index: usize) -> String {
    let RGBColor(r, g, b) = colour(index);
    format!("#{r:02x}{g:02x}{b:02x}")
}
