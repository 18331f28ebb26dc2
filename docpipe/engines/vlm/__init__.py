"""What the vision-language engines share: prompts, parsing and repair of answers."""
