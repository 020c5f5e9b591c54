//! App Store territories: Apple's ISO 3166-1 alpha-3 codes as a reader knows them, a country name
//! and a flag.

/// Every `TerritoryCode` in App Store Connect's API (sorted by code): alpha-3, alpha-2 (for the
/// flag; none where no flag exists), English name.
const TERRITORIES: &[(&str, Option<&str>, &str)] = &[
    ("ABW", Some("AW"), "Aruba"),
    ("AFG", Some("AF"), "Afghanistan"),
    ("AGO", Some("AO"), "Angola"),
    ("AIA", Some("AI"), "Anguilla"),
    ("ALB", Some("AL"), "Albania"),
    ("AND", Some("AD"), "Andorra"),
    ("ANT", None, "Netherlands Antilles"),
    ("ARE", Some("AE"), "United Arab Emirates"),
    ("ARG", Some("AR"), "Argentina"),
    ("ARM", Some("AM"), "Armenia"),
    ("ASM", Some("AS"), "American Samoa"),
    ("ATG", Some("AG"), "Antigua and Barbuda"),
    ("AUS", Some("AU"), "Australia"),
    ("AUT", Some("AT"), "Austria"),
    ("AZE", Some("AZ"), "Azerbaijan"),
    ("BDI", Some("BI"), "Burundi"),
    ("BEL", Some("BE"), "Belgium"),
    ("BEN", Some("BJ"), "Benin"),
    ("BES", Some("BQ"), "Caribbean Netherlands"),
    ("BFA", Some("BF"), "Burkina Faso"),
    ("BGD", Some("BD"), "Bangladesh"),
    ("BGR", Some("BG"), "Bulgaria"),
    ("BHR", Some("BH"), "Bahrain"),
    ("BHS", Some("BS"), "Bahamas"),
    ("BIH", Some("BA"), "Bosnia and Herzegovina"),
    ("BLR", Some("BY"), "Belarus"),
    ("BLZ", Some("BZ"), "Belize"),
    ("BMU", Some("BM"), "Bermuda"),
    ("BOL", Some("BO"), "Bolivia"),
    ("BRA", Some("BR"), "Brazil"),
    ("BRB", Some("BB"), "Barbados"),
    ("BRN", Some("BN"), "Brunei"),
    ("BTN", Some("BT"), "Bhutan"),
    ("BWA", Some("BW"), "Botswana"),
    ("CAF", Some("CF"), "Central African Republic"),
    ("CAN", Some("CA"), "Canada"),
    ("CHE", Some("CH"), "Switzerland"),
    ("CHL", Some("CL"), "Chile"),
    ("CHN", Some("CN"), "China"),
    ("CIV", Some("CI"), "Côte d'Ivoire"),
    ("CMR", Some("CM"), "Cameroon"),
    ("COD", Some("CD"), "Democratic Republic of the Congo"),
    ("COG", Some("CG"), "Republic of the Congo"),
    ("COK", Some("CK"), "Cook Islands"),
    ("COL", Some("CO"), "Colombia"),
    ("COM", Some("KM"), "Comoros"),
    ("CPV", Some("CV"), "Cabo Verde"),
    ("CRI", Some("CR"), "Costa Rica"),
    ("CUB", Some("CU"), "Cuba"),
    ("CUW", Some("CW"), "Curaçao"),
    ("CXR", Some("CX"), "Christmas Island"),
    ("CYM", Some("KY"), "Cayman Islands"),
    ("CYP", Some("CY"), "Cyprus"),
    ("CZE", Some("CZ"), "Czechia"),
    ("DEU", Some("DE"), "Germany"),
    ("DJI", Some("DJ"), "Djibouti"),
    ("DMA", Some("DM"), "Dominica"),
    ("DNK", Some("DK"), "Denmark"),
    ("DOM", Some("DO"), "Dominican Republic"),
    ("DZA", Some("DZ"), "Algeria"),
    ("ECU", Some("EC"), "Ecuador"),
    ("EGY", Some("EG"), "Egypt"),
    ("ERI", Some("ER"), "Eritrea"),
    ("ESP", Some("ES"), "Spain"),
    ("EST", Some("EE"), "Estonia"),
    ("ETH", Some("ET"), "Ethiopia"),
    ("FIN", Some("FI"), "Finland"),
    ("FJI", Some("FJ"), "Fiji"),
    ("FLK", Some("FK"), "Falkland Islands"),
    ("FRA", Some("FR"), "France"),
    ("FRO", Some("FO"), "Faroe Islands"),
    ("FSM", Some("FM"), "Micronesia"),
    ("GAB", Some("GA"), "Gabon"),
    ("GBR", Some("GB"), "United Kingdom"),
    ("GEO", Some("GE"), "Georgia"),
    ("GGY", Some("GG"), "Guernsey"),
    ("GHA", Some("GH"), "Ghana"),
    ("GIB", Some("GI"), "Gibraltar"),
    ("GIN", Some("GN"), "Guinea"),
    ("GLP", Some("GP"), "Guadeloupe"),
    ("GMB", Some("GM"), "Gambia"),
    ("GNB", Some("GW"), "Guinea-Bissau"),
    ("GNQ", Some("GQ"), "Equatorial Guinea"),
    ("GRC", Some("GR"), "Greece"),
    ("GRD", Some("GD"), "Grenada"),
    ("GRL", Some("GL"), "Greenland"),
    ("GTM", Some("GT"), "Guatemala"),
    ("GUF", Some("GF"), "French Guiana"),
    ("GUM", Some("GU"), "Guam"),
    ("GUY", Some("GY"), "Guyana"),
    ("HKG", Some("HK"), "Hong Kong"),
    ("HND", Some("HN"), "Honduras"),
    ("HRV", Some("HR"), "Croatia"),
    ("HTI", Some("HT"), "Haiti"),
    ("HUN", Some("HU"), "Hungary"),
    ("IDN", Some("ID"), "Indonesia"),
    ("IMN", Some("IM"), "Isle of Man"),
    ("IND", Some("IN"), "India"),
    ("IRL", Some("IE"), "Ireland"),
    ("IRQ", Some("IQ"), "Iraq"),
    ("ISL", Some("IS"), "Iceland"),
    ("ISR", Some("IL"), "Israel"),
    ("ITA", Some("IT"), "Italy"),
    ("JAM", Some("JM"), "Jamaica"),
    ("JEY", Some("JE"), "Jersey"),
    ("JOR", Some("JO"), "Jordan"),
    ("JPN", Some("JP"), "Japan"),
    ("KAZ", Some("KZ"), "Kazakhstan"),
    ("KEN", Some("KE"), "Kenya"),
    ("KGZ", Some("KG"), "Kyrgyzstan"),
    ("KHM", Some("KH"), "Cambodia"),
    ("KIR", Some("KI"), "Kiribati"),
    ("KNA", Some("KN"), "Saint Kitts and Nevis"),
    ("KOR", Some("KR"), "South Korea"),
    ("KWT", Some("KW"), "Kuwait"),
    ("LAO", Some("LA"), "Laos"),
    ("LBN", Some("LB"), "Lebanon"),
    ("LBR", Some("LR"), "Liberia"),
    ("LBY", Some("LY"), "Libya"),
    ("LCA", Some("LC"), "Saint Lucia"),
    ("LIE", Some("LI"), "Liechtenstein"),
    ("LKA", Some("LK"), "Sri Lanka"),
    ("LSO", Some("LS"), "Lesotho"),
    ("LTU", Some("LT"), "Lithuania"),
    ("LUX", Some("LU"), "Luxembourg"),
    ("LVA", Some("LV"), "Latvia"),
    ("MAC", Some("MO"), "Macao"),
    ("MAR", Some("MA"), "Morocco"),
    ("MCO", Some("MC"), "Monaco"),
    ("MDA", Some("MD"), "Moldova"),
    ("MDG", Some("MG"), "Madagascar"),
    ("MDV", Some("MV"), "Maldives"),
    ("MEX", Some("MX"), "Mexico"),
    ("MHL", Some("MH"), "Marshall Islands"),
    ("MKD", Some("MK"), "North Macedonia"),
    ("MLI", Some("ML"), "Mali"),
    ("MLT", Some("MT"), "Malta"),
    ("MMR", Some("MM"), "Myanmar"),
    ("MNE", Some("ME"), "Montenegro"),
    ("MNG", Some("MN"), "Mongolia"),
    ("MNP", Some("MP"), "Northern Mariana Islands"),
    ("MOZ", Some("MZ"), "Mozambique"),
    ("MRT", Some("MR"), "Mauritania"),
    ("MSR", Some("MS"), "Montserrat"),
    ("MTQ", Some("MQ"), "Martinique"),
    ("MUS", Some("MU"), "Mauritius"),
    ("MWI", Some("MW"), "Malawi"),
    ("MYS", Some("MY"), "Malaysia"),
    ("MYT", Some("YT"), "Mayotte"),
    ("NAM", Some("NA"), "Namibia"),
    ("NCL", Some("NC"), "New Caledonia"),
    ("NER", Some("NE"), "Niger"),
    ("NFK", Some("NF"), "Norfolk Island"),
    ("NGA", Some("NG"), "Nigeria"),
    ("NIC", Some("NI"), "Nicaragua"),
    ("NIU", Some("NU"), "Niue"),
    ("NLD", Some("NL"), "Netherlands"),
    ("NOR", Some("NO"), "Norway"),
    ("NPL", Some("NP"), "Nepal"),
    ("NRU", Some("NR"), "Nauru"),
    ("NZL", Some("NZ"), "New Zealand"),
    ("OMN", Some("OM"), "Oman"),
    ("PAK", Some("PK"), "Pakistan"),
    ("PAN", Some("PA"), "Panama"),
    ("PER", Some("PE"), "Peru"),
    ("PHL", Some("PH"), "Philippines"),
    ("PLW", Some("PW"), "Palau"),
    ("PNG", Some("PG"), "Papua New Guinea"),
    ("POL", Some("PL"), "Poland"),
    ("PRI", Some("PR"), "Puerto Rico"),
    ("PRT", Some("PT"), "Portugal"),
    ("PRY", Some("PY"), "Paraguay"),
    ("PSE", Some("PS"), "Palestinian Territories"),
    ("PYF", Some("PF"), "French Polynesia"),
    ("QAT", Some("QA"), "Qatar"),
    ("REU", Some("RE"), "Réunion"),
    ("ROU", Some("RO"), "Romania"),
    ("RUS", Some("RU"), "Russia"),
    ("RWA", Some("RW"), "Rwanda"),
    ("SAU", Some("SA"), "Saudi Arabia"),
    ("SEN", Some("SN"), "Senegal"),
    ("SGP", Some("SG"), "Singapore"),
    ("SHN", Some("SH"), "Saint Helena"),
    ("SLB", Some("SB"), "Solomon Islands"),
    ("SLE", Some("SL"), "Sierra Leone"),
    ("SLV", Some("SV"), "El Salvador"),
    ("SMR", Some("SM"), "San Marino"),
    ("SOM", Some("SO"), "Somalia"),
    ("SPM", Some("PM"), "Saint Pierre and Miquelon"),
    ("SRB", Some("RS"), "Serbia"),
    ("SSD", Some("SS"), "South Sudan"),
    ("STP", Some("ST"), "Sao Tome and Principe"),
    ("SUR", Some("SR"), "Suriname"),
    ("SVK", Some("SK"), "Slovakia"),
    ("SVN", Some("SI"), "Slovenia"),
    ("SWE", Some("SE"), "Sweden"),
    ("SWZ", Some("SZ"), "Eswatini"),
    ("SXM", Some("SX"), "Sint Maarten"),
    ("SYC", Some("SC"), "Seychelles"),
    ("TCA", Some("TC"), "Turks and Caicos Islands"),
    ("TCD", Some("TD"), "Chad"),
    ("TGO", Some("TG"), "Togo"),
    ("THA", Some("TH"), "Thailand"),
    ("TJK", Some("TJ"), "Tajikistan"),
    ("TKM", Some("TM"), "Turkmenistan"),
    ("TLS", Some("TL"), "Timor-Leste"),
    ("TON", Some("TO"), "Tonga"),
    ("TTO", Some("TT"), "Trinidad and Tobago"),
    ("TUN", Some("TN"), "Tunisia"),
    ("TUR", Some("TR"), "Türkiye"),
    ("TUV", Some("TV"), "Tuvalu"),
    ("TWN", Some("TW"), "Taiwan"),
    ("TZA", Some("TZ"), "Tanzania"),
    ("UGA", Some("UG"), "Uganda"),
    ("UKR", Some("UA"), "Ukraine"),
    ("UMI", Some("UM"), "U.S. Outlying Islands"),
    ("URY", Some("UY"), "Uruguay"),
    ("USA", Some("US"), "United States"),
    ("UZB", Some("UZ"), "Uzbekistan"),
    ("VAT", Some("VA"), "Vatican City"),
    ("VCT", Some("VC"), "Saint Vincent and the Grenadines"),
    ("VEN", Some("VE"), "Venezuela"),
    ("VGB", Some("VG"), "British Virgin Islands"),
    ("VIR", Some("VI"), "U.S. Virgin Islands"),
    ("VNM", Some("VN"), "Vietnam"),
    ("VUT", Some("VU"), "Vanuatu"),
    ("WLF", Some("WF"), "Wallis and Futuna"),
    ("WSM", Some("WS"), "Samoa"),
    ("XKS", Some("XK"), "Kosovo"),
    ("YEM", Some("YE"), "Yemen"),
    ("ZAF", Some("ZA"), "South Africa"),
    ("ZMB", Some("ZM"), "Zambia"),
    ("ZWE", Some("ZW"), "Zimbabwe"),
];

/// A territory as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Territory {
    /// The code as Apple sent it.
    pub code: String,
    /// The English name; the code itself when the code is unknown.
    pub name: String,
    /// The flag emoji, when the code is known and has one.
    pub flag: Option<String>,
}

impl Territory {
    /// Looks `code` up (case-insensitively); an unknown code stays as it was sent.
    pub fn from_code(code: &str) -> Self {
        let upper = code.trim().to_ascii_uppercase();
        match TERRITORIES.binary_search_by(|(alpha3, _, _)| (*alpha3).cmp(upper.as_str())) {
            Ok(i) => {
                let (_, alpha2, name) = TERRITORIES[i];
                Self {
                    code: code.to_owned(),
                    name: name.to_owned(),
                    flag: alpha2.and_then(flag),
                }
            }
            Err(_) => Self {
                code: code.to_owned(),
                name: code.to_owned(),
                flag: None,
            },
        }
    }

    /// `🇫🇷 France`, or the bare name without a flag.
    pub fn display(&self) -> String {
        match &self.flag {
            Some(flag) => format!("{flag} {}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The two regional indicator symbols that spell `alpha2`.
fn flag(alpha2: &str) -> Option<String> {
    const REGIONAL_INDICATOR_A: u32 = 0x1F1E6;
    alpha2
        .bytes()
        .map(|b| {
            b.is_ascii_uppercase()
                .then(|| char::from_u32(REGIONAL_INDICATOR_A + u32::from(b - b'A')))
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_well_formed() {
        for pair in TERRITORIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (alpha3, alpha2, name) in TERRITORIES {
            assert!(alpha3.len() == 3 && alpha3.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(alpha2.is_none_or(|a| a.len() == 2));
            assert!(!name.is_empty());
        }
        assert!(TERRITORIES.len() >= 175);
    }

    #[test]
    fn known_codes_have_a_name_and_a_flag() {
        let france = Territory::from_code("FRA");
        assert_eq!(france.display(), "🇫🇷 France");
        assert_eq!(Territory::from_code("usa").display(), "🇺🇸 United States");
        assert_eq!(Territory::from_code("JPN").name, "Japan");
        assert_eq!(Territory::from_code("XKS").display(), "🇽🇰 Kosovo");
    }

    #[test]
    fn unknown_codes_are_shown_as_sent() {
        let unknown = Territory::from_code("ZZZ");
        assert_eq!(unknown.display(), "ZZZ");
        assert_eq!(
            Territory::from_code("ANT").display(),
            "Netherlands Antilles"
        );
    }
}
