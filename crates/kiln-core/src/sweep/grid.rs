//! A sweep's grid: `--grid KEY=V1,V2,…` parsed (values are TOML, so arrays keep their commas),
//! and the cross product of the values, one setting list per run.

/// The swept keys and their values, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grid {
    pub axes: Vec<(String, Vec<String>)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GridError {
    #[error("--grid {0}: expected KEY=VALUE,VALUE,… (e.g. model.dropout=0.0,0.3)")]
    Malformed(String),
    #[error("--grid {0}: the key is swept twice")]
    Repeated(String),
}

impl Grid {
    /// Parses `KEY=V1,V2,…` arguments.
    pub fn parse(arguments: &[String]) -> Result<Self, GridError> {
        let mut axes: Vec<(String, Vec<String>)> = Vec::new();
        for argument in arguments {
            let (key, values) = argument
                .split_once('=')
                .ok_or_else(|| GridError::Malformed(argument.clone()))?;
            let key = key.trim().to_string();
            let values = split_values(values);
            if key.is_empty() || values.is_empty() || values.iter().any(String::is_empty) {
                return Err(GridError::Malformed(argument.clone()));
            }
            if axes.iter().any(|(k, _)| *k == key) {
                return Err(GridError::Repeated(key));
            }
            axes.push((key, values));
        }
        Ok(Self { axes })
    }

    /// The grid an experiment file's `[sweep]` table describes (values written back as TOML).
    pub fn from_table(table: &std::collections::BTreeMap<String, Vec<toml::Value>>) -> Self {
        Self {
            axes: table
                .iter()
                .map(|(key, values)| (key.clone(), values.iter().map(|v| v.to_string()).collect()))
                .collect(),
        }
    }

    /// Adds `other`'s axes; a key both have takes `other`'s values (the command line wins).
    pub fn extend(&mut self, other: Grid) {
        for (key, values) in other.axes {
            match self.axes.iter_mut().find(|(k, _)| *k == key) {
                Some(axis) => axis.1 = values,
                None => self.axes.push((key, values)),
            }
        }
    }

    /// Every combination of the values, the last key varying fastest.
    pub fn combinations(&self) -> Vec<Vec<(String, String)>> {
        let mut all = vec![Vec::new()];
        for (key, values) in &self.axes {
            all = all
                .into_iter()
                .flat_map(|settings: Vec<(String, String)>| {
                    values.iter().map(move |value| {
                        let mut next = settings.clone();
                        next.push((key.clone(), value.clone()));
                        next
                    })
                })
                .collect();
        }
        all
    }

    pub fn keys(&self) -> Vec<String> {
        self.axes.iter().map(|(key, _)| key.clone()).collect()
    }
}

/// Splits on the commas that are not inside brackets or quotes: `[16,32],[32,64]` is two values.
fn split_values(text: &str) -> Vec<String> {
    let (mut values, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if depth == 0 && !quoted => {
                values.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    values.push(current.trim().to_string());
    values
}

/// A run's name from its experiment's and what it changes: `baseline-dropout0.3-lr0.001`
/// (the last part of each key, the value without brackets or quotes).
pub fn run_name(base: &str, settings: &[(String, String)]) -> String {
    let mut name = base.to_string();
    for (key, value) in settings {
        let short = key.rsplit('.').next().unwrap_or(key);
        let short = match short {
            "learning_rate" => "lr",
            "conv_channels" => "conv",
            "batch_size" => "bs",
            other => other,
        };
        let value: String = value
            .chars()
            .filter(|c| !matches!(c, '[' | ']' | '"' | ' '))
            .map(|c| if c == ',' { 'x' } else { c })
            .collect();
        name.push_str(&format!("-{short}{value}"));
    }
    name
}
