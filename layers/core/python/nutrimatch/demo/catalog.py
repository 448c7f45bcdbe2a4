"""Deterministic synthetic product catalogs, fast enough to write millions of CSV rows for benchmarks.

The "world" (brands, recipes, nutrition panels) is built once from a fixed seed: about thirty grocery
categories, each with name templates, flavors and ingredient pools whose allergen codes and diet flags are
declared next to the ingredient, so allergens always follow the ingredients and diet tags never contradict
them or the nutrition panel. Popularity is Zipf-like (brands, recipes, descriptors, places), so full-text
search sees a few common terms and a long tail of rare ones.

Row n (1-based, counted from 0 whatever `start`) depends only on (seed, n): its random draws are a
counter-based hash (splitmix64) computed with numpy for a whole chunk of rows at once, then mapped to
precomputed, already formatted strings. The per-row Python work is a few lookups and two str.format calls.

Allergens are ";"-joined codes, "none" for a product declaring none, and empty (unknown) for about 3 % of rows.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from nutrimatch.demo.customers import LAST_NAMES

PRODUCT_COLUMNS: tuple[str, ...] = (
    "external_id", "name", "brand", "description", "category", "price", "currency", "serving_size_g",
    "calories", "protein_g", "carbs_g", "fat_g", "saturated_fat_g", "fiber_g", "sugar_g", "added_sugar_g",
    "sodium_mg", "potassium_mg", "ingredients", "allergens", "dietary_tags",
)
DEFECTS = ("negative_calories", "non_numeric_protein", "unknown_allergen", "empty_name", "duplicate_id",
           "sodium_in_grams")
"""The one defect each bad row gets, assigned round-robin in row order."""
NO_ALLERGENS = "none"
"""Allergens of a product declared to contain none: an empty cell means unknown (ingestion stores NULL)."""

Range = tuple[float, float]


@dataclass(frozen=True)
class _Category:
    name: str
    share: float  # relative share of rows
    servings: tuple[int, ...]  # grams; the ranges below are per servings[0] and scale with the serving
    protein: Range
    carbs: Range
    fat: Range
    saturated: Range  # share of fat
    fiber: Range
    sugar: Range  # share of carbs (the upper half only for sweetened recipes)
    sodium: Range
    potassium: Range
    price: Range
    noun: str  # for descriptions
    templates: str  # "|"-separated, {b} brand and {f} flavor
    flavors: str  # "Display" (also the ingredient), "Display=Ingredient[flags]" or "Display=" (no ingredient)
    base: str  # ","-separated ingredients always present, "|" between alternatives, "@" the flavor's ingredient
    extras: str  # ","-separated optional ingredients


# Ingredient flags in brackets: allergen codes, plus * meat or gelatin (not vegetarian), ^ other animal
# product (not vegan), ! pork (neither halal nor kosher), + added sweetener.
_CATEGORIES = (
    _Category("dairy", 4, (240, 240, 120), (8, 9), (11, 13), (0, 8), (0.6, 0.66), (0, 0), (0.9, 1), (100, 130),
              (350, 400), (2.49, 5.99), "milk", "{b} {f} Milk|{b} Milk, {f}|{b} Ultra-Filtered Milk, {f}",
              "Whole=,Reduced Fat=,Low Fat=,Fat Free=,Chocolate=Cocoa,Strawberry,Vanilla=Vanilla Extract,"
              "Lactose Free=Lactase Enzyme,Grassfed=,Half and Half=Cream[milk],Heavy Cream=Cream[milk],Banana",
              "Milk[milk]|Grade A Milk[milk]|Pasteurized Whole Milk[milk]",
              "Vitamin D3,Vitamin A Palmitate,Cane Sugar[+],Carrageenan,Gellan Gum,Natural Flavor"),
    _Category("yogurt", 4, (170, 150, 227), (12, 17), (6, 20), (0, 6), (0.6, 0.7), (0, 1), (0.5, 0.9), (50, 120),
              (150, 300), (1.29, 6.99), "yogurt", "{b} Greek Yogurt, {f}|{b} {f} Skyr|{b} Whole Milk Yogurt, {f}",
              "Plain=,Vanilla=Vanilla Extract,Strawberry=Strawberries,Blueberry=Blueberries,Honey[^ +],Peach=Peaches,"
              "Raspberry=Raspberries,Mango,Coconut,Key Lime=Lime Juice,Black Cherry=Cherries,Lemon=Lemon Zest,"
              "Mixed Berry=Mixed Berries,Pineapple,Passion Fruit",
              "Cultured Pasteurized Milk[milk]|Cultured Nonfat Milk[milk]|Cultured Whole Milk[milk],Live Cultures",
              "Cane Sugar[+],Pectin,Fruit Pectin,Locust Bean Gum,Natural Flavor,Vitamin D3,Agave Syrup[+]"),
    _Category("cheese", 4, (28, 21, 30), (5, 8), (0, 2), (6, 10), (0.55, 0.65), (0, 0), (0, 0.5), (120, 350),
              (20, 40), (2.99, 9.99), "cheese", "{b} {f} Cheese|{b} Aged {f}|{b} Sliced {f} Cheese",
              "Cheddar=,Sharp Cheddar=,Mozzarella=,Swiss=,Provolone=,Gouda=,Parmesan=,Monterey Jack=,Pepper Jack="
              "Jalapeno Peppers,Colby=,Havarti=,Feta=,Brie=,Gruyere=,Muenster=,Asiago=,Manchego=,Smoked Gouda=Smoke",
              "Pasteurized Milk[milk]|Cultured Milk[milk],Salt,Cheese Culture|Cultures,Enzymes|Microbial Enzymes",
              "Annatto,Potato Starch,Natamycin,Cellulose Powder"),
    _Category("bread", 4, (50, 38, 64), (3, 6), (20, 26), (1, 3), (0.1, 0.3), (1, 4), (0.05, 0.2), (150, 250),
              (50, 120), (2.49, 6.99), "bread", "{b} {f} Bread|{b} {f} Loaf|{b} Bakery {f}",
              "Whole Wheat=,Sourdough=,Multigrain=Whole Grain Blend[wheat gluten],Rye=Rye Flour[gluten],White=,"
              "Honey Wheat=Honey[^ +],Cinnamon Raisin=Raisins,Brioche=Butter[milk],Seeded Rye=Sesame Seeds[sesame],"
              "Ciabatta=,Potato=Potato Flour,Oatmeal=Rolled Oats[gluten],Sprouted Grain=Sprouted Wheat[wheat gluten]",
              "Enriched Wheat Flour[wheat gluten]|Whole Wheat Flour[wheat gluten]|"
              "Stone Ground Wheat Flour[wheat gluten],"
              "Water,Yeast,Salt",
              "Cane Sugar[+],Soybean Oil[soybeans],Wheat Gluten[wheat gluten],Cultured Wheat Flour[wheat gluten],"
              "Vinegar,Eggs[eggs],Flaxseed,Sunflower Seeds,Calcium Propionate,Molasses[+],Nonfat Milk[milk]"),
    _Category("breakfast cereal", 4, (40, 30, 55), (2, 8), (28, 36), (1, 5), (0.1, 0.25), (1, 8), (0.05, 0.4),
              (90, 220), (60, 250), (2.99, 6.49), "cereal", "{b} {f} Cereal|{b} {f} Granola|{b} {f} Flakes",
              "Honey Nut=Honey[^ +],Frosted=Sugar[+],Cinnamon=,Chocolate=Cocoa,Bran=Wheat Bran[wheat gluten],"
              "Oat Clusters=Rolled Oats[gluten],Almond=Almonds[tree_nuts],Blueberry=Dried Blueberries,"
              "Maple Pecan=Pecans[tree_nuts],Peanut Butter=Peanuts[peanuts],Corn=,Rice Crisp=Crisp Rice,"
              "Raisin Bran=Raisins",
              "Whole Grain Oats[gluten]|Whole Grain Wheat[wheat gluten]|Corn Meal|Whole Grain Corn|Brown Rice",
              "Cane Sugar[+],Corn Syrup[+],Salt,Canola Oil,Tocopherols,Molasses[+],Brown Sugar[+],Iron,Niacinamide,"
              "Barley Malt Extract[gluten],Soy Lecithin[soybeans],Coconut Oil"),
    _Category("pasta", 3, (56, 56, 85), (7, 8), (41, 43), (1, 2), (0.1, 0.2), (2, 7), (0.02, 0.06), (0, 10),
              (100, 230), (1.19, 4.99), "pasta", "{b} {f}|{b} {f} Pasta|{b} Bronze Cut {f}",
              "Spaghetti=,Penne Rigate=,Rigatoni=,Fusilli=,Linguine=,Fettuccine=,Farfalle=,Orecchiette=,"
              "Elbow Macaroni=,Rotini=,Egg Noodles=Eggs[eggs],Lasagna=,Chickpea Rotini=Chickpea Flour,"
              "Red Lentil Penne=Red Lentil Flour,Spinach Fettuccine=Spinach Powder",
              "Durum Wheat Semolina[wheat gluten]|Whole Wheat Durum Flour[wheat gluten]|Semolina[wheat gluten]",
              "Niacin,Iron,Thiamine Mononitrate,Riboflavin,Folic Acid"),
    _Category("rice & grains", 3, (45, 45, 60), (3, 8), (30, 38), (0, 3), (0.1, 0.2), (0, 6), (0, 0.03), (0, 10),
              (40, 300), (1.99, 8.99), "grain", "{b} {f}|{b} Premium {f}|{b} Heritage {f}",
              "Jasmine Rice,Basmati Rice,Long Grain Rice,Brown Rice,Arborio Rice,Wild Rice,Quinoa,Tricolor Quinoa="
              "Quinoa,Pearled Farro=Farro[wheat gluten],Bulgur Wheat[wheat gluten],Couscous[wheat gluten],"
              "Steel Cut Oats=Oats[gluten],Black Rice,Millet,Pearl Barley=Barley[gluten],Sushi Rice",
              "@", "Rice Bran Oil,Dried Onion,Garlic Powder,Sea Salt,Spices"),
    _Category("snacks", 4, (30, 28, 40), (2, 6), (15, 22), (3, 9), (0.1, 0.4), (1, 4), (0.05, 0.4), (90, 250),
              (50, 200), (2.49, 5.99), "snack", "{b} {f} Crackers|{b} {f} Pretzels|{b} {f} Popcorn|{b} {f} Bites",
              "Sea Salt=Sea Salt,Cheddar=Cheddar Cheese[milk],White Cheddar=White Cheddar[milk],Everything=Sesame Seeds"
              "[sesame],Rosemary=Rosemary,Honey Mustard=Honey[^ +],Kettle Corn=Cane Sugar[+],"
              "Cracked Pepper=Black Pepper,"
              "Garlic Herb=Garlic,Original=,Butter=Butter[milk],Rye=Rye Flour[gluten],Multigrain=Oat Fiber[gluten]",
              "Enriched Wheat Flour[wheat gluten]|Popcorn|Whole Wheat Flour[wheat gluten]|Rice Flour,Salt",
              "Canola Oil,Sunflower Oil,Yeast,Malt Syrup[gluten +],Baking Soda,Onion Powder,Paprika Extract,Sugar[+]"),
    _Category("chips", 4, (28, 28, 42), (1, 3), (14, 18), (8, 11), (0.08, 0.15), (1, 2), (0, 0.1), (130, 220),
              (250, 400), (2.99, 5.49), "chip",
              "{b} {f} Potato Chips|{b} Kettle Cooked Chips, {f}|{b} {f} Tortilla Chips|{b} {f} Veggie Crisps",
              "Sea Salt=,Salt and Vinegar=Vinegar Powder,Barbecue=Barbecue Seasoning,Sour Cream and Onion=Sour Cream"
              "[milk],Jalapeno=Jalapeno Powder,Sweet Chili=Chili Powder,Cheddar Jalapeno=Cheddar Cheese[milk],Lime=Lime"
              " Juice Powder,Ranch=Buttermilk[milk],Salsa Verde=Tomatillo Powder,Dill Pickle=Dill,Truffle=Truffle Oil,"
              "Himalayan Pink Salt=Pink Salt",
              "Potatoes|Stone Ground Corn|Sweet Potatoes|Cassava,Sunflower Oil|Avocado Oil|Canola Oil|Safflower Oil",
              "Salt,Sea Salt,Maltodextrin,Yeast Extract,Garlic Powder,Onion Powder,Paprika,Rice Flour,Sugar[+]"),
    _Category("cookies", 3, (30, 28, 34), (1, 3), (18, 23), (6, 9), (0.3, 0.6), (0, 2), (0.45, 0.7), (80, 160),
              (30, 90), (2.99, 6.49), "cookie", "{b} {f} Cookies|{b} Soft Baked {f} Cookies|{b} {f} Shortbread",
              "Chocolate Chip=Chocolate Chips[milk soybeans +],Oatmeal Raisin=Raisins,Double Chocolate=Cocoa,"
              "Peanut Butter=Peanut Butter[peanuts],Snickerdoodle=Cinnamon,Ginger Snap=Ginger,Lemon=Lemon Oil,"
              "Macadamia=Macadamia Nuts[tree_nuts],Sugar=,Almond Butter=Almond Butter[tree_nuts],Shortbread=",
              "Enriched Wheat Flour[wheat gluten]|Unbleached Wheat Flour[wheat gluten]|Oat Flour[gluten],"
              "Sugar[+]|Cane Sugar[+]|Brown Sugar[+],Butter[milk]|Palm Oil|Coconut Oil",
              "Eggs[eggs],Baking Soda,Salt,Natural Flavor,Soy Lecithin[soybeans],Molasses[+],Vanilla Extract"),
    _Category("chocolate", 3, (40, 30, 45), (2, 4), (20, 26), (11, 17), (0.55, 0.65), (1, 5), (0.5, 0.85), (5, 60),
              (150, 350), (1.99, 5.99), "chocolate", "{b} {f} Chocolate Bar|{b} {f} Chocolate|{b} Truffles, {f}",
              "Dark 70%=,Milk Chocolate=Milk Powder[milk],Sea Salt Caramel=Caramel[milk +],Almond=Almonds[tree_nuts],"
              "Hazelnut=Hazelnuts[tree_nuts],Mint=Peppermint Oil,Orange=Orange Oil,Raspberry=Freeze Dried Raspberries,"
              "Toffee=Toffee[milk +],Espresso=Ground Coffee,Chili=Chili,Coconut=Toasted Coconut,"
              "Peanut=Peanuts[peanuts]",
              "Chocolate Liquor|Cocoa Mass|Unsweetened Chocolate,Cane Sugar[+]|Sugar[+]|Coconut Sugar[+],Cocoa Butter",
              "Soy Lecithin[soybeans],Sunflower Lecithin,Vanilla Beans,Vanilla Extract,Whole Milk Powder[milk]"),
    _Category("nuts & seeds", 3, (28, 28, 30), (4, 8), (4, 9), (13, 18), (0.07, 0.18), (2, 4), (0.1, 0.4), (0, 190),
              (150, 300), (3.99, 12.99), "nut", "{b} {f}|{b} Roasted {f}|{b} {f} Trail Mix",
              "Almonds=Almonds[tree_nuts],Cashews=Cashews[tree_nuts],Pistachios=Pistachios[tree_nuts],Walnuts=Walnuts"
              "[tree_nuts],Pecans=Pecans[tree_nuts],Mixed Nuts=Mixed Tree Nuts[tree_nuts],Peanuts=Peanuts[peanuts],"
              "Pumpkin Seeds=Pumpkin Seeds,Sunflower Seeds=Sunflower Seeds,Macadamias=Macadamia Nuts[tree_nuts],"
              "Brazil Nuts=Brazil Nuts[tree_nuts],Hemp Hearts=Hemp Seeds,Chia Seeds=Chia Seeds",
              "@,Peanut Oil[peanuts]|Sunflower Oil|Cottonseed Oil",
              "Sea Salt,Smoked Paprika,Honey[^ +],Raisins,Rosemary"),
    _Category("nut butters", 2, (32, 32, 30), (6, 8), (6, 8), (15, 18), (0.1, 0.2), (1, 3), (0.2, 0.5), (0, 150),
              (180, 240), (2.99, 11.99), "spread", "{b} {f} Butter|{b} Creamy {f} Butter|{b} Crunchy {f} Spread",
              "Peanut=Dry Roasted Peanuts[peanuts],Almond=Roasted Almonds[tree_nuts],Cashew=Cashews[tree_nuts],"
              "Sunflower Seed=Sunflower Seeds,Hazelnut Cocoa=Hazelnuts[tree_nuts],Tahini=Sesame Seeds[sesame],"
              "Pecan=Pecans[tree_nuts],Maple Peanut=Peanuts[peanuts]",
              "@,Salt|Sea Salt", "Palm Oil,Cane Sugar[+],Molasses[+],Honey[^ +],Flaxseed,Cocoa"),
    _Category("frozen meals", 4, (280, 250, 340), (12, 25), (30, 50), (6, 18), (0.25, 0.45), (2, 7), (0.05, 0.2),
              (500, 900), (400, 800), (3.49, 8.99), "meal", "{b} {f} Bowl|{b} {f} Frozen Entree|{b} Skillet Meal, {f}",
              "Chicken Alfredo=Chicken[*],Beef Lasagna=Beef[*],Teriyaki Chicken=Chicken[*],Vegetable Curry=Chickpeas,"
              "Shrimp Scampi=Shrimp[crustacean_shellfish],Mac and Cheese=Cheddar Cheese[milk],"
              "Pad Thai=Peanuts[peanuts],"
              "Burrito Bowl=Black Beans,Sesame Chicken=Chicken[*],Swedish Meatballs=Pork[* !],Cauliflower Crust Pizza="
              "Mozzarella[milk],Tofu Stir Fry=Tofu[soybeans],Salmon Rice Bowl=Salmon[fish]",
              "Water,Cooked Rice|Cooked Pasta[wheat gluten eggs]|Potatoes",
              "Soy Sauce[soybeans wheat gluten],Cream[milk],Garlic,Onions,Carrots,Broccoli,Corn Starch,Spices,"
              "Sugar[+]"),
    _Category("soups", 3, (245, 240, 250), (3, 12), (10, 25), (1, 8), (0.2, 0.5), (1, 6), (0.1, 0.35), (450, 890),
              (200, 600), (1.49, 4.99), "soup", "{b} {f} Soup|{b} Hearty {f}|{b} {f} Broth",
              "Chicken Noodle=Chicken[*],Tomato Basil=Tomato Puree,Minestrone=Cannellini Beans,Lentil=Lentils,"
              "Clam Chowder=Clams[molluscs *],Split Pea=Split Peas,Butternut Squash=Butternut Squash,"
              "Beef Barley=Beef[*],"
              "French Onion=Onions,Black Bean=Black Beans,Broccoli Cheddar=Cheddar Cheese[milk],Miso=Miso[soybeans],"
              "Vegetable=Vegetable Broth,Pho=Rice Noodles",
              "Water|Vegetable Stock|Chicken Stock[*],Salt",
              "Carrots,Celery,Onions,Garlic,Cream[milk],Wheat Flour[wheat gluten],Egg Noodles[eggs wheat gluten],"
              "Potatoes,Thyme,Bay Leaf,Sugar[+]"),
    _Category("sauces", 3, (125, 60, 125), (1, 4), (6, 14), (1, 7), (0.1, 0.4), (1, 3), (0.4, 0.8), (300, 600),
              (250, 450), (2.49, 8.99), "sauce", "{b} {f} Sauce|{b} {f} Pasta Sauce|{b} Simmer Sauce, {f}",
              "Marinara=Tomatoes,Tomato Basil=Basil,Arrabbiata=Red Pepper Flakes,Vodka=Cream[milk],Alfredo=Parmesan"
              "[milk],Pesto=Pine Nuts[tree_nuts],Tikka Masala=Garam Masala,Teriyaki=Soy Sauce[soybeans wheat gluten],"
              "Puttanesca=Anchovies[fish],Bolognese=Beef[*],Roasted Garlic=Garlic,Coconut Curry=Coconut Milk",
              "Tomato Puree|Crushed Tomatoes|Water,Olive Oil|Canola Oil",
              "Salt,Onions,Garlic,Oregano,Sugar[+],Citric Acid"),
    _Category("condiments", 3, (15, 17, 14), (0, 1), (0, 5), (0, 10), (0.1, 0.2), (0, 0), (0.5, 1), (60, 190),
              (10, 60), (1.99, 6.49), "condiment", "{b} {f}|{b} Classic {f}|{b} Squeeze {f}",
              "Ketchup=Tomato Concentrate,Yellow Mustard=Mustard Seed,Dijon Mustard=Mustard Seed,Mayonnaise=Egg Yolks"
              "[eggs],Ranch=Buttermilk[milk],Caesar=Anchovies[fish],Balsamic Vinaigrette=Balsamic Vinegar,Sriracha="
              "Red Chili Peppers,Hot Sauce=Cayenne Peppers,Relish=Cucumbers,Tahini Dressing=Tahini[sesame],Honey "
              "Mustard=Honey[^ +],Barbecue=Molasses[+]",
              "Distilled Vinegar|Water|Soybean Oil[soybeans]", "Salt,Spices,Garlic Powder,Xanthan Gum,Corn Syrup[+]"),
    _Category("canned vegetables", 3, (125, 120, 130), (1, 7), (4, 20), (0, 1), (0.1, 0.2), (2, 7), (0.1, 0.4),
              (10, 400), (150, 400), (0.89, 2.99), "vegetable", "{b} {f}|{b} Canned {f}|{b} No Salt Added {f}",
              "Sweet Corn=Corn,Green Beans=Green Beans,Sweet Peas=Peas,Black Beans=Black Beans,Chickpeas=Chickpeas,"
              "Kidney Beans=Kidney Beans,Diced Tomatoes=Tomatoes,Sliced Carrots=Carrots,Beets=Beets,"
              "Pinto Beans=Pinto Beans,Artichoke Hearts=Artichokes,Mushrooms=Mushrooms,Pumpkin Puree=Pumpkin",
              "@,Water", "Salt,Sea Salt,Calcium Chloride,Citric Acid,Sugar[+]"),
    _Category("fresh produce", 3, (100, 85, 150), (1, 3), (3, 10), (0, 1), (0, 0.1), (1, 4), (0.2, 0.6), (5, 70),
              (150, 450), (0.99, 4.99), "vegetable", "{b} {f}|{b} Fresh {f}|{b} Farmstand {f}",
              "Baby Spinach,Romaine Hearts,Broccoli Florets,Baby Carrots,Kale,Brussels Sprouts,Asparagus,Zucchini,"
              "Bell Peppers,Cauliflower,Arugula,Snap Peas,Shiitake Mushrooms,Sweet Potatoes,Green Cabbage,"
              "Heirloom Tomatoes", "", ""),
    _Category("fruit", 3, (140, 150, 120), (0, 2), (15, 25), (0, 1), (0, 0.1), (2, 5), (0.6, 0.85), (0, 5),
              (150, 400), (1.49, 6.99), "fruit", "{b} {f}|{b} Fresh {f}|{b} Dried {f}|{b} Fruit Cup, {f}",
              "Gala Apples,Honeycrisp Apples,Bananas,Navel Oranges,Strawberries,Blueberries,Red Grapes,Mango,"
              "Pineapple Chunks,Clementines,Medjool Dates,Bartlett Pears,Kiwi,Peaches,Cherries,Apricots", "",
              "Fruit Juice,Ascorbic Acid,Sugar[+],Light Syrup[+]"),
    _Category("juices", 3, (240, 240, 355), (0, 2), (22, 30), (0, 1), (0, 0.1), (0, 1), (0.8, 0.95), (5, 30),
              (250, 500), (2.49, 6.99), "juice", "{b} {f} Juice|{b} Cold Pressed {f}|{b} 100% {f} Juice",
              "Orange=Orange Juice,Apple=Apple Juice,Grapefruit=Grapefruit Juice,Cranberry=Cranberry Juice,"
              "Pomegranate=Pomegranate Juice,Grape=Concord Grape Juice,Carrot Ginger=Carrot Juice,Green=Kale Juice,"
              "Tart Cherry=Cherry Juice,Pineapple=Pineapple Juice,Lemonade=Lemon Juice,Watermelon=Watermelon Juice",
              "Water|Filtered Water|Juice Concentrate", "Ascorbic Acid,Cane Sugar[+],Natural Flavor,Ginger,Calcium"),
    _Category("soft drinks", 3, (355, 355, 591), (0, 0), (0, 45), (0, 0), (0, 0), (0, 0), (0.95, 1), (10, 70),
              (0, 30), (0.99, 2.49), "soda", "{b} {f} Soda|{b} Sparkling {f}|{b} {f} Cola|{b} Zero Sugar {f}",
              "Cola=Caramel Color,Lemon Lime=Citric Acid,Root Beer=Natural Flavor,Ginger Ale=Ginger Extract,"
              "Orange=Orange Flavor,Grape=Grape Flavor,Cream Soda=Vanilla Flavor,Black Cherry=Cherry Flavor,"
              "Grapefruit=Grapefruit Flavor,Cherry Cola=Cherry Flavor",
              "Carbonated Water", "High Fructose Corn Syrup[+],Cane Sugar[+],Phosphoric Acid,Sodium Benzoate,Caffeine"),
    _Category("plant-based milk", 3, (240, 240, 240), (1, 8), (1, 16), (2, 8), (0.1, 0.3), (0, 2), (0.5, 1), (95, 180),
              (40, 400), (2.99, 5.99), "drink", "{b} {f} Milk|{b} {f} Beverage|{b} Barista {f}",
              "Almond=Almonds[tree_nuts],Oat=Oats[gluten],Soy=Soybeans[soybeans],Coconut=Coconut Cream,Cashew="
              "Cashews[tree_nuts],Pea Protein=Pea Protein,Rice=Brown Rice,Hemp=Hemp Seeds,Macadamia=Macadamia Nuts"
              "[tree_nuts],Unsweetened Almond=Almonds[tree_nuts],Vanilla Oat=Oats[gluten]",
              "Filtered Water", "Cane Sugar[+],Calcium Carbonate,Sea Salt,Gellan Gum,Sunflower Lecithin,Vitamin D2"),
    _Category("meat", 3, (112, 112, 85), (18, 24), (0, 1), (8, 22), (0.35, 0.45), (0, 0), (0, 0), (60, 90),
              (250, 350), (4.99, 14.99), "meat", "{b} {f}|{b} Butcher's {f}|{b} Grass Fed {f}",
              "Ground Beef=Beef[*],Sirloin Steak=Beef[*],Ribeye=Beef[*],Pork Chops=Pork[* !],Pork Tenderloin=Pork[* !],"
              "Lamb Chops=Lamb[*],Beef Stew Meat=Beef[*],Bison=Bison[*],Italian Sausage=Pork[* !],Bratwurst=Pork[* !],"
              "Flank Steak=Beef[*],Ground Lamb=Lamb[*]",
              "@,Water|Salt", "Spices,Garlic,Paprika,Dextrose[+]"),
    _Category("poultry", 3, (112, 112, 85), (20, 26), (0, 1), (1, 12), (0.25, 0.35), (0, 0), (0, 0), (50, 120),
              (250, 400), (3.99, 11.99), "poultry", "{b} {f}|{b} Free Range {f}|{b} Air Chilled {f}",
              "Chicken Breast=Chicken[*],Chicken Thighs=Chicken[*],Chicken Wings=Chicken[*],Ground Turkey=Turkey[*],"
              "Turkey Breast=Turkey[*],Drumsticks=Chicken[*],Whole Chicken=Chicken[*],Chicken Sausage=Chicken[*],"
              "Duck Breast=Duck[*],Cornish Hen=Chicken[*]",
              "@,Water|Salt", "Rosemary Extract,Sea Salt,Black Pepper"),
    _Category("seafood", 3, (112, 112, 85), (15, 25), (0, 2), (1, 14), (0.15, 0.25), (0, 0), (0, 0), (60, 400),
              (250, 500), (5.99, 16.99), "seafood", "{b} {f}|{b} Wild Caught {f}|{b} Frozen {f}",
              "Atlantic Salmon=Salmon[fish],Sockeye Salmon=Salmon[fish],Cod Fillets=Cod[fish],Tilapia=Tilapia[fish],"
              "Shrimp=Shrimp[crustacean_shellfish],Tuna Steaks=Tuna[fish],Crab Legs=Crab[crustacean_shellfish],"
              "Lobster Tails=Lobster[crustacean_shellfish],Halibut=Halibut[fish],Pollock=Pollock[fish],"
              "Rainbow Trout=Trout[fish],Mahi Mahi=Mahi Mahi[fish]",
              "@,Water|Salt", "Sodium Tripolyphosphate,Lemon Juice,Dill"),
    _Category("deli", 3, (56, 56, 28), (8, 12), (0, 4), (1, 8), (0.3, 0.4), (0, 0), (0.3, 1), (400, 650),
              (150, 300), (3.99, 9.99), "deli meat", "{b} Sliced {f}|{b} Deli {f}|{b} Thin Sliced {f}",
              "Oven Roasted Turkey=Turkey[*],Black Forest Ham=Pork[* !],Genoa Salami=Pork[* !],Roast Beef=Beef[*],"
              "Pastrami=Beef[*],Honey Ham=Pork[* !],Bologna=Pork[* !],Smoked Chicken=Chicken[*],Pepperoni=Pork[* !],"
              "Mortadella=Pork[* !],Corned Beef=Beef[*]",
              "@,Water,Salt", "Sodium Phosphate,Cane Sugar[+],Sodium Nitrite,Celery Powder,Spices,Carrageenan"),
    _Category("baby food", 2, (113, 99, 128), (0, 3), (8, 18), (0, 2), (0, 0.2), (1, 3), (0.3, 0.7), (0, 25),
              (100, 300), (0.99, 2.49), "puree", "{b} Baby {f}|{b} {f} Puree|{b} {f} Pouch",
              "Apple=Apples,Pear=Pears,Sweet Potato=Sweet Potatoes,Banana=Bananas,Carrot=Carrots,Peas=Peas,"
              "Butternut Squash=Butternut Squash,Apple Blueberry=Blueberries,Mango=Mango,Prune=Prunes,Oatmeal=Oats"
              "[gluten],Chicken and Rice=Chicken[*],Greek Yogurt Berry=Yogurt[milk]",
              "@,Water|Fruit Puree|Vegetable Puree", "Lemon Juice Concentrate,Ascorbic Acid,Cinnamon"),
    _Category("sports nutrition", 3, (60, 32, 45), (15, 25), (4, 30), (2, 9), (0.2, 0.5), (1, 12), (0.1, 0.6),
              (100, 300), (100, 400), (1.99, 49.99), "protein", "{b} {f} Protein Bar|{b} Whey Protein, {f}|"
              "{b} {f} Protein Shake|{b} Plant Protein, {f}",
              "Chocolate Peanut Butter=Peanuts[peanuts],Cookies and Cream=Cookie Pieces[wheat gluten],Vanilla="
              "Vanilla Extract,Birthday Cake=Sprinkles[+],Salted Caramel=Caramel[milk +],Mint Chocolate=Peppermint,"
              "Double Chocolate=Cocoa,Almond Fudge=Almonds[tree_nuts],Unflavored=,Mocha=Coffee,Strawberry=Strawberries",
              "Whey Protein Isolate[milk]|Milk Protein Isolate[milk]|Pea Protein|Soy Protein Isolate[soybeans]",
              "Soluble Corn Fiber,Erythritol,Stevia,Sucralose,Cocoa Butter,Cane Sugar[+],Sunflower Lecithin,Sea Salt,"
              "Natural Flavors,Xanthan Gum,Glycerin"),
    _Category("tea & coffee", 3, (240, 240, 355), (0, 1), (0, 3), (0, 0), (0, 0), (0, 0), (0, 1), (0, 10), (50, 120),
              (3.99, 14.99), "brew", "{b} {f}|{b} Classic {f}|{b} {f} Pods",
              "Earl Grey Tea=Black Tea,English Breakfast Tea=Black Tea,Green Tea,Chamomile Tea=Chamomile Flowers,"
              "Jasmine Green Tea,Peppermint Tea=Peppermint Leaves,Chai Tea=Black Tea,Rooibos Tea=Rooibos,Matcha,"
              "French Roast Coffee=Arabica Coffee,Colombian Coffee=Arabica Coffee,Decaf Coffee=Decaffeinated Coffee,"
              "Breakfast Blend Coffee=Arabica Coffee,Hazelnut Coffee=Arabica Coffee,Sumatra Coffee=Arabica Coffee,"
              "Ethiopian Yirgacheffe Coffee=Arabica Coffee",
              "", "Natural Flavor,Cinnamon,Ginger Root,Lemongrass,Hibiscus,Licorice Root"),
)

def _words(text: str, separator: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(separator))


# Brand parts. Brands are coined words ("Velora"), "{adjective} {noun}" ("Green Valley"), "{place} {noun}"
# ("Nordic Crest") or family names ("Okafor Family Farms"), so a catalog has hundreds of distinct brand words.
_BRAND_ADJECTIVES = _words(
    "Green Golden Silver Little Happy Wild True Pure Simple Honest Bright Sunny Blue Red Old Good Fresh Northern"
    " Southern Western Eastern Quiet Humble Bold Lucky Clever Gentle Noble Rustic Sweet Open Clear Deep Tall Hidden"
    " Early Copper Amber Crimson Ivory Velvet Misty Windy Rolling Shady Stone Cedar Maple Birch Wheat Clover Sage"
    " Thistle Heather Juniper Saffron Cobalt Emerald Evergreen Daybreak Twilight Morning Harvest Kindred Steady"
)
_BRAND_NOUNS = _words(
    "Valley Moon Crest Meadow Ridge Creek Grove Orchard Field Hollow Prairie Summit Brook Haven Acre Barn Hearth"
    " Table Pantry Kitchen Garden Farm Mill Oak Pine Willow Spring River Harbor Bay Point Hill Canyon Mesa Lake"
    " Pond Glen Dale Fern Root Leaf Sprout Seed Basket Crate Ladle Spoon Kettle Skillet Oven Larder Cellar Cove"
    " Peak Trail Path Gate Fence Porch Lantern Compass Anchor Sparrow Robin Heron Fox Bear Otter Badger Finch"
)
_BRAND_PLACES = _words(
    "Nordic Alpine Pacific Atlantic Coastal Highland Lowland Prairie Delta Sierra Cascade Ozark Bayou Tundra Aspen"
    " Sonoma Napa Vermont Maine Dakota Montana Tahoe Catskill Shenandoah Mojave Sonora Patagonia Andes Tuscan"
    " Sicilian Provence Bavarian Celtic Nordland Baltic Aegean Adriatic Iberian Kyoto Sapporo Kerala Punjab"
)
_BRAND_FAMILY_FORMS = ("{}'s", "{} Family Farms", "{} & Sons", "{} Kitchen", "Casa {}", "Maison {}", "{} Bros.",
                       "{} Creamery", "{} Provisions", "Grandma {}'s")
_COINED_STARTS = _words("Ve Nu Ka Lu Zo Mi Ta Bri Cor Del Fen Gal Har Is Jo Kel Lor Mar Nor Ol Pel Quin Ros Sol Tav"
                  " Ul Val Wyn Xan Yel Zel Am Bel Cas Dor El Fa Gre Hol Ir Vi Sen Tro Pa Ne")
_COINED_MIDDLES = ("", "", "", "la", "ri", "no", "ve", "ta", "mi", "ra", "lo", "be", "si")
_COINED_ENDS = _words("ra na ro via sa ia vo mo lia rin dale ly ette ico ana ora ella ina eta ix os um io ea")
_BRAND_COUNT = 2000
_UNPRONOUNCEABLE = re.compile(r"([aeiou])\1|[aeiou]{3}|ii|ix[aeiou]", re.IGNORECASE)

_DESCRIPTORS = _words(
    "wholesome hearty creamy crunchy crispy tangy zesty savory rich smooth velvety bright bold mellow nutty earthy"
    " toasty buttery silky chewy airy delicate robust vibrant rustic artisan handcrafted small-batch"
    " slow-roasted farm-fresh garden-fresh"
    " sustainably-sourced heritage classic timeless traditional modern"
    " old-fashioned homestyle rustic-style country-style family-style chef-inspired restaurant-quality gourmet"
    " premium everyday simple honest clean-label minimally-processed naturally-flavored lightly-sweetened"
    " lightly-salted unsalted unsweetened spiced peppery smoky fiery mild tart juicy fragrant aromatic floral"
    " citrusy herby garlicky caramelized roasted toasted grilled braised baked steamed fermented cultured aged"
    " cured smoked dried sprouted whole-grain seeded layered flaky tender succulent hearty-textured satisfying"
    " filling energizing refreshing soothing comforting indulgent decadent luscious luxurious lush mouthwatering"
    " irresistible wholesome-tasting crowd-pleasing kid-approved lunchbox-ready on-the-go snackable shareable"
    " pantry-friendly weeknight-easy ready-to-eat ready-to-heat microwaveable freezer-friendly resealable"
    " single-serve family-size convenient versatile balanced nourishing protein-packed fiber-rich nutrient-dense"
    " vitamin-rich hydrating invigorating zingy punchy tangy-sweet sweet-and-salty bittersweet honeyed maple-kissed"
    " fire-roasted wood-fired vintage reserve signature original authentic"
    " regional seasonal limited-edition award-winning beloved iconic cult-favorite bestselling hometown local"
    " neighborhood coastal mountain prairie heirloom"
    " old-world new-world fusion street-style bistro-style deli-style bakery-fresh oven-baked pan-seared"
    " slow-simmered"
)
_PLACES = _words(
    "Vermont|Oregon|Wisconsin|Idaho|Maine|Iowa|Kansas|Georgia|Carolina|Texas|Colorado|Montana|Michigan|Ohio|"
    "Kentucky|Tennessee|Minnesota|Nebraska|Arizona|New Mexico|Utah|Nevada|Alaska|Hawaii|California|Florida|"
    "Louisiana|Mississippi|Arkansas|Oklahoma|Virginia|Pennsylvania|New England|the Midwest|the Pacific Northwest|"
    "the Great Lakes|the Ozarks|Appalachia|the Rockies|the Hudson Valley|Napa Valley|Sonoma County|the Central Valley|"
    "Tuscany|Provence|Normandy|Brittany|Burgundy|Bavaria|Swabia|Tyrol|Emilia-Romagna|Sicily|Sardinia|Campania|"
    "Andalusia|Galicia|Catalonia|the Basque Country|Lisbon|Porto|Crete|Cyprus|Anatolia|Lebanon|Jordan|Morocco|"
    "Tunisia|Ethiopia|Kenya|Ghana|Nigeria|Senegal|the Cape|Kerala|Punjab|Gujarat|Bengal|Sri Lanka|Nepal|Yunnan|"
    "Sichuan|Fujian|Taiwan|Hokkaido|Kyushu|Okinawa|Jeju|Vietnam|Thailand|Java|Bali|the Philippines|Oaxaca|Jalisco|"
    "Yucatan|Veracruz|Guatemala|Costa Rica|Colombia|Peru|Chile|Patagonia|Brazil|Jamaica|Trinidad|Puerto Rico|"
    "Quebec|Nova Scotia|Ontario|British Columbia|Iceland|Norway|Sweden|Denmark|Finland|Ireland|Scotland|Wales|"
    "Cornwall|Yorkshire|the Alps|the Pyrenees|the Dolomites|the Andes|the Highlands|Tasmania|New Zealand",
    "|",
)
# Town names ("Millbrook", "Cedarville") for "packed in ..." lines: hundreds of rare words for full-text search.
_TOWN_STARTS = _words(
    "Ash Oak Mill River Cedar Elm Fair Green Spring Maple Stone Clay Wood Brook Bridge Glen Hazel Kings Lake North"
    " South West East Pine Rock Sand Silver Sun Willow Wind Red White Black Gold Bell Clear Deer Fox Hart Honey"
    " Iron Ivy Lin Marsh Moss New Old Pleasant Quarry Rose Salt Shel Thorn Walnut Wheat Whit Win Alder Beech Birch"
)
_TOWN_ENDS = _words("ford ton ville dale field wood burg port haven brook ridge view worth bury ham ley stead water")
_TOWNS = 700
_PAIRINGS = _words(
    "toast bagels oatmeal porridge pancakes waffles crepes smoothies salads wraps sandwiches paninis burgers tacos"
    " burritos quesadillas nachos enchiladas tamales chili stews casseroles risotto paella pilaf ramen pho udon"
    " dumplings curries dal biryani kebabs falafel hummus pita flatbreads pizza pasta lasagna gnocchi polenta"
    " grits cornbread biscuits scones muffins brownies sundaes parfaits cobblers crumbles pies tarts charcuterie"
    " antipasto bruschetta crostini tapas mezze picnics barbecues cookouts tailgates brunch lunchboxes campfires"
    " roasts steaks chops cutlets schnitzel meatballs meatloaf omelets frittatas quiche shakshuka congee"
    " stir-fries noodles sushi poke bibimbap tempura teriyaki satay laksa gumbo jambalaya chowder bisque goulash"
    " borscht pierogi fondue raclette nachos salsa guacamole crudites popcorn granola yogurt cereal cocoa lattes"
    " espresso cappuccino tea lemonade cocktails mocktails spritzers cider sangria",
)
_DESCRIPTIONS = (
    "{A} {f} {n} made with {i} and {j}.",
    "{A} and {b} {n}, crafted in {t}.",
    "{A} {n} featuring {i}, from {p}.",
    "{A}, {b} {f} {n} with {j}.",
    "Small-batch {f} {n}: {a}, {b}, inspired by {p}.",
    "{A} {n} blending {i} with {j}.",
    "Sourced near {p}: {a} {f} {n}.",
    "Packed fresh in {t}: {a} {f} {n}.",
    "{A} {f} {n} after an old {s} recipe.",
    "{A} {f} {n}; {b} taste, simple ingredients.",
    "From the {s} family table in {p}: {a} and {b}.",
    "{A} {n} starring {i}, finished with {j}.",
    "{A} {f} {n}; lovely alongside {x} or {y}.",
    "Try it with {x}, {y} or straight from the pack.",
    "Enjoy {a}, {b} {f} {n} anytime.",
)
_TAGS = ("vegan", "vegetarian", "gluten_free", "dairy_free", "nut_free", "organic", "kosher", "halal", "keto",
         "low_sodium", "low_sugar", "high_protein", "high_fiber")
_BIT = {tag: 1 << index for index, tag in enumerate(_TAGS)}
_NON_ALLERGEN_FLAGS = frozenset("*^!+")
_PLAIN_INGREDIENTS = ("Water", "Filtered Water", "Carbonated Water", "Salt", "Sea Salt")  # not worth describing
_SHELLFISH = frozenset({"crustacean_shellfish", "molluscs"})
_ANIMAL_ALLERGENS = frozenset({"milk", "eggs", "fish", *_SHELLFISH})
_NAME_SLOTS = 12  # name templates cycled to 12 slots: one uniform draw serves categories with 2, 3 or 4 templates
_RECIPES = 96  # ingredient lists (with their flavor) per category
_PANELS = 128  # nutrition panels per category: the first half unsweetened, the second with added sugar
_PRICES = 64
_UNKNOWN_ALLERGENS = 0.03
_CHUNK = 16384
_MASK64 = (1 << 64) - 1
_WORLD_SEED = 20240601
"""Brands, recipes and panels are fixed; `seed` only changes which rows pick which of them."""


class _TagText(dict[int, str]):
    """';'-joined tag codes of a tag bitmask, computed on first use (a few thousand distinct masks occur)."""

    def __missing__(self, mask: int) -> str:
        text = ";".join(tag for tag in _TAGS if mask & _BIT[tag])
        self[mask] = text
        return text


@dataclass(frozen=True)
class _Recipe:
    flavor: str
    ingredients: str
    allergens: str
    tags: int
    sweetened: bool
    key_ingredients: tuple[str, str]  # lower-case, for descriptions


@dataclass(frozen=True)
class _World:
    categories: tuple[str, ...]
    category_cdf: npt.NDArray[np.float64]
    names: tuple[str, ...]  # _NAME_SLOTS per category
    nouns: tuple[str, ...]
    brands: tuple[str, ...]
    brand_cdf: npt.NDArray[np.float64]
    recipes: tuple[_Recipe, ...]  # _RECIPES per category
    recipe_cdf: npt.NDArray[np.float64]
    sweetened: npt.NDArray[np.int64]  # per recipe, 0 or 1
    panels: tuple[tuple[tuple[str, ...], int], ...]  # (serving_size_g .. potassium_mg texts, tag mask)
    prices: tuple[str, ...]  # _PRICES per category
    descriptor_cdf: npt.NDArray[np.float64]
    place_cdf: npt.NDArray[np.float64]
    pairing_cdf: npt.NDArray[np.float64]
    towns: tuple[str, ...]
    town_cdf: npt.NDArray[np.float64]


def _zipf_cdf(size: int, exponent: float) -> npt.NDArray[np.float64]:
    weights = 1.0 / np.arange(1, size + 1, dtype=np.float64) ** exponent
    cdf: npt.NDArray[np.float64] = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf


def _zipf_pick(rng: random.Random, items: list[str]) -> str:
    return rng.choices(items, weights=[1 / (rank + 1) for rank in range(len(items))])[0]


def _brands(rng: random.Random) -> tuple[str, ...]:
    families = list(LAST_NAMES)
    brands: dict[str, None] = {}
    while len(brands) < _BRAND_COUNT:
        roll = rng.random()
        if roll < 0.4:
            brand = (rng.choice(_COINED_STARTS) + rng.choice(_COINED_MIDDLES) + rng.choice(_COINED_ENDS)).capitalize()
            if _UNPRONOUNCEABLE.search(brand):
                continue
        elif roll < 0.62:
            brand = f"{rng.choice(_BRAND_ADJECTIVES)} {rng.choice(_BRAND_NOUNS)}"
        elif roll < 0.8:
            brand = rng.choice(_BRAND_FAMILY_FORMS).format(rng.choice(families))
        elif roll < 0.95:
            brand = f"{rng.choice(_BRAND_PLACES)} {rng.choice(_BRAND_NOUNS)}"
        else:
            brand = f"{rng.choice(_BRAND_NOUNS)} & {rng.choice(_BRAND_NOUNS)}"
        brands[brand] = None
    return tuple(brands)


_INGREDIENT = re.compile(r"\s*([^\[]+?)\s*(?:\[([^\]]*)\])?\s*$")


def _ingredient(text: str) -> tuple[str, frozenset[str]]:
    """"Whey[milk +]" -> ("Whey", {"milk", "+"})."""
    match = _INGREDIENT.match(text)
    if match is None:
        raise ValueError(f"bad ingredient {text!r}")
    return match[1], frozenset((match[2] or "").split())


def _recipe(rng: random.Random, category: _Category) -> _Recipe:
    flavor_display, explicit, flavor_ingredient = _zipf_pick(rng, category.flavors.split(",")).partition("=")
    if not explicit:  # "Strawberry" alone is also the ingredient
        flavor_ingredient = flavor_display
    groups = [group for group in category.base.split(",") if group]
    if "@" not in groups:  # the flavor comes second by default ("Cultured Milk, Strawberries, ...")
        groups.insert(min(1, len(groups)), "@")
    chosen = [flavor_ingredient if group == "@" else rng.choice(group.split("|")) for group in groups]
    chosen = [text for text in chosen if text]
    extras = [extra for extra in category.extras.split(",") if extra]
    chosen += rng.sample(extras, rng.randint(0, min(3, len(extras))))
    ingredients = dict(_ingredient(text) for text in chosen)
    flags = frozenset().union(*ingredients.values())
    allergens = set(flags - _NON_ALLERGEN_FLAGS)
    if "wheat" in allergens:
        allergens.add("gluten")
    meat = "*" in flags
    vegetarian = not meat and not allergens & {"fish", *_SHELLFISH}
    vegan = vegetarian and not allergens & _ANIMAL_ALLERGENS and "^" not in flags
    # Claims are printed on some packs, never on the wrong ones.
    candidates = (
        ("vegan", vegan, 0.55), ("vegetarian", vegetarian, 0.45), ("gluten_free", "gluten" not in allergens, 0.5),
        ("dairy_free", "milk" not in allergens, 0.4), ("nut_free", not allergens & {"peanuts", "tree_nuts"}, 0.35),
        ("organic", True, 0.12), ("kosher", "!" not in flags and not allergens & _SHELLFISH, 0.15),
        ("halal", "!" not in flags, 0.07),
    )
    tags = sum(_BIT[tag] for tag, allowed, chance in candidates if allowed and rng.random() < chance)
    names = list(ingredients)
    key = (flavor_ingredient and _ingredient(flavor_ingredient)[0]) or (names[0] if names else flavor_display)
    other = rng.choice([name for name in names if name not in (key, *_PLAIN_INGREDIENTS)] or [category.noun])
    return _Recipe(flavor_display, ", ".join(names), ";".join(sorted(allergens)) or NO_ALLERGENS, tags, "+" in flags,
                   (key.lower(), other.lower()))


def _number(value: float) -> str:
    return f"{value:g}"


def _panel(rng: random.Random, category: _Category, sweetened: bool) -> tuple[tuple[str, ...], int]:
    """One nutrition facts panel, rounded the way US labels are (FDA 21 CFR 101.9)."""
    serving = rng.choice(category.servings)
    scale = serving / category.servings[0]

    def draw(bounds: Range) -> float:
        return rng.uniform(*bounds) * scale

    protein, carbs, fat, sodium, potassium = (draw(category.protein), draw(category.carbs), draw(category.fat),
                                              draw(category.sodium), draw(category.potassium))
    fiber = min(draw(category.fiber), carbs * 0.8)
    low, high = category.sugar
    middle = (low + high) / 2
    sugar = (carbs - fiber) * rng.uniform(*((middle, high) if sweetened else (low, middle)))
    added = sugar * rng.uniform(0.5, 0.95) if sweetened else 0.0
    saturated = fat * rng.uniform(*category.saturated)
    calories = (4 * protein + 4 * (carbs - fiber) + 2 * fiber + 9 * fat) * rng.uniform(0.96, 1.04)

    def grams(value: float) -> float:  # whole grams, halves below 5 g, 0 below 0.5 g
        return 0.0 if value < 0.5 else round(value * 2) / 2 if value < 5 else float(round(value))

    def milligrams(value: float) -> int:  # 0 below 5 mg, steps of 5 mg up to 140 mg, then 10 mg
        return 0 if value < 5 else 5 * round(value / 5) if value <= 140 else 10 * round(value / 10)

    kcal = 0 if calories < 5 else 5 * round(calories / 5) if calories <= 50 else 10 * round(calories / 10)
    protein_g, carbs_g, fat_g = grams(protein), grams(carbs), grams(fat)
    fiber_g = min(grams(fiber), carbs_g)
    sugar_g = min(grams(sugar), carbs_g)
    added_g, saturated_g = min(grams(added), sugar_g), min(grams(saturated), fat_g)
    sodium_mg = milligrams(sodium)
    tags = ((sodium_mg <= 140) * _BIT["low_sodium"] | (sugar_g <= 5) * _BIT["low_sugar"]
            | (protein_g >= 10) * _BIT["high_protein"] | (fiber_g >= 5) * _BIT["high_fiber"]
            | (carbs_g <= 5 and rng.random() < 0.5) * _BIT["keto"])
    texts = (str(serving), str(kcal), *map(_number, (protein_g, carbs_g, fat_g, saturated_g, fiber_g, sugar_g,
                                                       added_g)), str(sodium_mg), str(milligrams(potassium)))
    return texts, tags


def _price(rng: random.Random, category: _Category) -> str:
    cents = round(rng.uniform(*category.price) * 100)
    return f"{cents // 100}.{cents % 100 // 10}9"  # shelf prices end in 9


@functools.cache
def _world() -> _World:
    rng = random.Random(_WORLD_SEED)  # noqa: S311 - demo data, not security
    names: list[str] = []
    recipes: list[_Recipe] = []
    panels: list[tuple[tuple[str, ...], int]] = []
    prices: list[str] = []
    for category in _CATEGORIES:
        templates = category.templates.split("|")
        names += [templates[slot % len(templates)] for slot in range(_NAME_SLOTS)]
        recipes += [_recipe(rng, category) for _ in range(_RECIPES)]
        panels += [_panel(rng, category, sweetened=half == 1) for half in (0, 1) for _ in range(_PANELS // 2)]
        prices += [_price(rng, category) for _ in range(_PRICES)]
    shares = np.array([category.share for category in _CATEGORIES], dtype=np.float64)
    return _World(
        categories=tuple(category.name for category in _CATEGORIES),
        category_cdf=np.cumsum(shares) / shares.sum(),
        names=tuple(names),
        nouns=tuple(category.noun for category in _CATEGORIES),
        brands=_brands(rng),
        brand_cdf=_zipf_cdf(_BRAND_COUNT, 0.9),
        recipes=tuple(recipes),
        recipe_cdf=_zipf_cdf(_RECIPES, 0.8),
        sweetened=np.array([recipe.sweetened for recipe in recipes], dtype=np.int64),
        panels=tuple(panels),
        prices=tuple(prices),
        descriptor_cdf=_zipf_cdf(len(_DESCRIPTORS), 0.6),
        place_cdf=_zipf_cdf(len(_PLACES), 0.6),
        pairing_cdf=_zipf_cdf(len(_PAIRINGS), 0.6),
        towns=tuple(rng.sample([start + end for start in _TOWN_STARTS for end in _TOWN_ENDS], _TOWNS)),
        town_cdf=_zipf_cdf(_TOWNS, 0.6),
    )


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a cheap, well-mixed hash of each 64-bit value (uint64 arithmetic wraps)."""
    z = values + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Draws:
    """Independent random draws for each row number of a chunk: draw k of row n is hash(hash(seed, n), k)."""

    def __init__(self, seed: int, numbers: npt.NDArray[np.uint64]) -> None:
        self._rows = _mix(numbers ^ np.uint64(seed * 0x2545F4914F6CDD1D & _MASK64))
        self._used = 0

    def _next(self) -> npt.NDArray[np.uint64]:
        self._used += 1
        return _mix(self._rows + np.uint64(self._used * 0x9E3779B97F4A7C15 & _MASK64))

    def uniform(self) -> npt.NDArray[np.float64]:
        return (self._next() >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def below(self, size: int) -> npt.NDArray[np.int64]:
        """Integers in [0, size), size < 2**32: the high 32 bits scaled, without modulo bias worth mentioning."""
        return ((self._next() >> np.uint64(32)) * np.uint64(size) >> np.uint64(32)).astype(np.int64)

    def weighted(self, cdf: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        return np.minimum(np.searchsorted(cdf, self.uniform(), side="right"), len(cdf) - 1).astype(np.int64)


def _rows(count: int, seed: int, start: int) -> Iterator[list[str]]:
    """Clean rows as lists in PRODUCT_COLUMNS order."""
    world = _world()
    cap_descriptors = [descriptor.capitalize() for descriptor in _DESCRIPTORS]
    tag_text = _TagText()
    for chunk_start in range(start, start + count, _CHUNK):
        numbers = np.arange(chunk_start + 1, min(chunk_start + _CHUNK, start + count) + 1, dtype=np.uint64)
        draws = _Draws(seed, numbers)
        category = draws.weighted(world.category_cdf)
        # Each category has its own best sellers: the brand ranking is rotated per category.
        brand = (draws.weighted(world.brand_cdf) + category * 97) % _BRAND_COUNT
        name = category * _NAME_SLOTS + draws.below(_NAME_SLOTS)
        recipe = category * _RECIPES + draws.weighted(world.recipe_cdf)
        half = _PANELS // 2
        panel = category * _PANELS + world.sweetened[recipe] * half + draws.below(half)
        price = category * _PRICES + draws.below(_PRICES)
        columns = zip(
            numbers.tolist(), category.tolist(), brand.tolist(), name.tolist(), recipe.tolist(), panel.tolist(),
            price.tolist(), draws.below(len(_DESCRIPTIONS)).tolist(), draws.weighted(world.descriptor_cdf).tolist(),
            draws.weighted(world.descriptor_cdf).tolist(), draws.weighted(world.place_cdf).tolist(),
            draws.below(len(LAST_NAMES)).tolist(), draws.weighted(world.pairing_cdf).tolist(),
            draws.weighted(world.pairing_cdf).tolist(), draws.weighted(world.town_cdf).tolist(),
            (draws.uniform() < _UNKNOWN_ALLERGENS).tolist(), strict=True,
        )
        for (number, cat, brand_i, name_i, recipe_i, panel_i, price_i, text_i, first, second, place, surname,
             pairing, other_pairing, town, unknown) in columns:
            brand_name = world.brands[brand_i]
            recipe_row = world.recipes[recipe_i]
            panel_texts, panel_tags = world.panels[panel_i]
            flavor = recipe_row.flavor
            key, other = recipe_row.key_ingredients
            description = _DESCRIPTIONS[text_i].format(
                A=cap_descriptors[first], a=_DESCRIPTORS[first], b=_DESCRIPTORS[second], f=flavor.lower(),
                n=world.nouns[cat], i=key, j=other, p=_PLACES[place], s=LAST_NAMES[surname],
                x=_PAIRINGS[pairing], y=_PAIRINGS[other_pairing], t=world.towns[town],
            )
            yield [
                f"SKU-{number:08d}", world.names[name_i].format(b=brand_name, f=flavor), brand_name, description,
                world.categories[cat], world.prices[price_i], "USD", *panel_texts, recipe_row.ingredients,
                "" if unknown else recipe_row.allergens, tag_text[recipe_row.tags | panel_tags],
            ]


def _plan_defects(count: int, seed: int, start: int, bad_fraction: float) -> dict[int, tuple[str, int]]:
    """{0-based row index: (defect, index of the earlier row whose id a duplicate reuses, else -1)}."""
    if not 0.0 <= bad_fraction <= 1.0:
        raise ValueError(f"bad_fraction must be between 0 and 1 (got {bad_fraction})")
    rng = random.Random(f"catalog-defects:{seed}:{start}:{count}")  # noqa: S311 - demo data, not security
    bad = sorted(rng.sample(range(count), round(count * bad_fraction)))
    bad_set = set(bad)
    plan: dict[int, tuple[str, int]] = {}
    for turn, index in enumerate(bad):
        defect, source = DEFECTS[turn % len(DEFECTS)], -1
        if defect == "duplicate_id":
            # Copy the id of a clean earlier row, so the duplicate (not the original) is the bad row.
            source = rng.randrange(index) if index else -1
            while source in bad_set:
                source -= 1
            if source < 0:
                defect = DEFECTS[(turn + 1) % len(DEFECTS)]
        plan[index] = (defect, source)
    return plan


def _sodium_grams(sodium_mg: str) -> str:
    """The sodium of the panel mistakenly written in grams: always fractional and below 5 ("0.4", "1.25")."""
    grams = min(4.95, max(0.05, round(int(sodium_mg) / 1000, 2)))
    return f"{grams + 0.05 if grams.is_integer() else grams:g}"


def _apply_defect(row: list[str], defect: str, source_id: str) -> None:
    if defect == "negative_calories":
        row[8] = f"-{max(int(row[8]), 120)}"
    elif defect == "non_numeric_protein":
        row[9] = "abc"
    elif defect == "unknown_allergen":
        row[19] = f"{row[19]};moonrock" if row[19] not in ("", NO_ALLERGENS) else "moonrock"
    elif defect == "empty_name":
        row[1] = ""
    elif defect == "duplicate_id":
        row[0] = source_id
    else:
        row[16] = _sodium_grams(row[16])


def _product_rows(count: int, seed: int, start: int, plan: dict[int, tuple[str, int]]) -> Iterator[list[str]]:
    if count < 0 or start < 0:
        raise ValueError(f"count and start must not be negative (got {count}, {start})")
    if not plan:
        yield from _rows(count, seed, start)
        return
    for index, row in enumerate(_rows(count, seed, start)):
        if index in plan:
            defect, source = plan[index]
            _apply_defect(row, defect, f"SKU-{start + source + 1:08d}")
        yield row


def generate_products(
    count: int, *, seed: int = 7, start: int = 0, bad_fraction: float = 0.0
) -> Iterator[dict[str, str]]:
    """`count` products numbered from `start` + 1 ("SKU-00000001", ...): CSV-ready strings in PRODUCT_COLUMNS order.

    With `bad_fraction`, that share of the rows gets exactly one defect each (see DEFECTS and write_products_csv).
    """
    for row in _product_rows(count, seed, start, _plan_defects(count, seed, start, bad_fraction)):
        yield dict(zip(PRODUCT_COLUMNS, row, strict=True))


def write_products_csv(
    target: str | os.PathLike[str] | BinaryIO,
    count: int,
    *,
    seed: int = 7,
    start: int = 0,
    bad_fraction: float = 0.0,
) -> list[int]:
    """Write a UTF-8 CSV (header row, then `count` products) to a path or binary stream; return the bad rows.

    Bad rows are the 1-based data-row numbers (the header is not counted) that got a defect, in order.
    A stream is left open.
    """
    plan = _plan_defects(count, seed, start, bad_fraction)
    rows = _product_rows(count, seed, start, plan)
    if isinstance(target, str | os.PathLike):
        with open(target, "w", encoding="utf-8", newline="", buffering=1 << 20) as file:
            _write(file, rows)
    else:
        text = io.TextIOWrapper(target, encoding="utf-8", newline="")
        try:
            _write(text, rows)
            text.flush()
        finally:
            text.detach()  # hand the caller's stream back open
    return [index + 1 for index in sorted(plan)]


def _write(file: io.TextIOBase | io.TextIOWrapper, rows: Iterator[list[str]]) -> None:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(PRODUCT_COLUMNS)
    writer.writerows(rows)


def products_csv_bytes(count: int, *, seed: int = 7, bad_fraction: float = 0.0) -> bytes:
    """The CSV write_products_csv would write, in memory (for small catalogs and tests)."""
    buffer = io.BytesIO()
    write_products_csv(buffer, count, seed=seed, bad_fraction=bad_fraction)
    return buffer.getvalue()
